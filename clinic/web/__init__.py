"""The public web app (Sanic): the clinic's page, the widget's assets and the visitor API."""

"""What both Sanic apps (the web app and the staff console) share: the guard that runs before
any route, rate limits, and the client's address behind a trusted proxy.
"""

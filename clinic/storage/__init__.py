"""Storage: the clinic database, encryption at rest, referrals and their spool, ratings,
backups, and Rasa's tracker store read by the clinic's own processes.
"""

"""Clinicians' e-mail: the notifier that sends and retries referral notices, and the local
mailbox `make run` uses.
"""

"""The staff console: a second Sanic app where support staff and clinicians
review transcripts and act on referrals and handoff requests (loopback :8001)."""

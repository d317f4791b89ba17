"""The clinic's own rules: the pre-screen's questions and eligibility, answers to forms, the
assistant's answers as written, staffed hours, the live handoff's states.
"""

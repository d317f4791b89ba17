"""The pre-screen as a visitor walks it, step by step: one place for every test that plays it
(end to end through the web app, the fault tests, the console's data, the widget in a browser).

A step is ``("say" | "press", text or button title, a part of the answer expected)``.
"""

from typing import Dict, List, Tuple

Step = Tuple[str, str, str]

CONTACT: Dict[str, str] = {"name": "Jane Example", "email": "jane.example@example.com", "phone": "(212) 555-0199"}

INTRO = "isn't a diagnosis"  # the consent question, before any question
FREQUENCY = "2 · More than half the days"  # a PHQ-2/GAD-2 button: a positive screen

START: List[Step] = [
    ("say", "am i eligible for this?", INTRO),
    ("press", "Yes, let's start", "Question 1 of 16"),
]

# From the first question to the contact details, an eligible visitor (typed where typing is natural).
ELIGIBLE_ANSWERS: List[Step] = [
    ("say", "twenty five", "Which US state will you be in"),
    ("say", "TX", "What would you most like help with?"),
    ("press", "Depression", "What have you already tried"),
    ("press", "Both", "Over the last 2 weeks"),
    ("press", FREQUENCY, "Over the last 2 weeks"),
    ("press", FREQUENCY, "Over the last 2 weeks"),
    ("press", FREQUENCY, "Over the last 2 weeks"),
    ("press", FREQUENCY, "thoughts of ending your life"),
    ("press", "No", "pregnant"),
    ("say", "nope", "psychosis"),
    ("say", "nope", "blood pressure"),
    ("say", "nope", "Do you take any of these?"),
    ("press", "None of these", "Do any of these apply to you?"),
    ("press", "None of these", "alcohol or drugs"),
    ("say", "nope", "sober adult"),
    ("press", "Yes", "What name"),
]

CONTACT_STEPS: List[Step] = [
    ("say", CONTACT["name"], "email"),
    ("say", CONTACT["email"], "phone number"),
    ("say", CONTACT["phone"], "best time"),
    ("press", "Evenings", "May the"),
    ("press", "Yes, contact me", "Your reference is"),
]

# An eligible visitor's pre-screen, from "am I eligible?" to the referral.
ELIGIBLE: List[Step] = START + ELIGIBLE_ANSWERS + CONTACT_STEPS

# The same visitor by buttons wherever the bot offers them (the widget's walk, after "Am I eligible?"):
# typed only age, state, name, email and phone.
BY_BUTTONS: List[Step] = [
    ("press", "Yes, let's start", "How old are you?"),
    ("say", "34", "Which US state"),
    ("say", "TX", "What would you most like help with?"),
    ("press", "Depression", "What have you already tried"),
    ("press", "Both", "Over the last 2 weeks"),
    ("press", FREQUENCY, "Over the last 2 weeks"),
    ("press", FREQUENCY, "Over the last 2 weeks"),
    ("press", FREQUENCY, "Over the last 2 weeks"),
    ("press", FREQUENCY, "thoughts of ending your life"),
    ("press", "No", "pregnant"),
    ("press", "No", "psychosis"),
    ("press", "No", "blood pressure"),
    ("press", "No", "Do you take any of these?"),
    ("press", "None of these", "Do any of these apply to you?"),
    ("press", "None of these", "alcohol or drugs"),
    ("press", "No", "sober adult"),
    ("press", "Yes", "What name"),
    ("say", CONTACT["name"], "email"),
    ("say", CONTACT["email"], "phone number"),
    ("say", CONTACT["phone"], "best time"),
    ("press", "Evenings", "May the"),
]

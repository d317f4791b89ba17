"""Text as a person sees it: control and format characters removed (one rule for the visitor's
messages, clinic.web.visitor_input, and the training data staff accept, clinic.nlu.reviewed_data)."""

import unicodedata


# Control and format characters have no place in a message (NUL, BEL, DEL, escapes, bidi
# overrides, zero-width marks: Unicode categories C*); newlines and tabs stay.
def _keep(ch: str) -> bool:
    return ch in "\n\t" or not unicodedata.category(ch).startswith("C")


def visible_text(text: str) -> str:
    """``text`` in NFC without control or format characters (newlines and tabs kept), stripped."""
    if text.isascii() and text.isprintable():  # most messages: nothing to normalise or remove
        return text.strip()
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if _keep(ch)).strip()


# Apostrophes as phones and Macs type them (’ ‘ ʼ) and a backtick, each read as the straight one
# by the rules that spell words with it (answer parsing, the crisis patterns).
STRAIGHT_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})

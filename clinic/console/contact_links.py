"""Phone numbers and e-mail addresses that staff see, as ``tel:`` and ``mailto:`` links (one tap
from a callback request, a referral or the waitlist). The values were typed by visitors: only a
plain address or a US number becomes a link, built from its own characters; anything else stays
text (and every value is escaped by the templates, in the link as out of it).
"""

import re
from typing import Optional
from urllib.parse import quote

EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}$")
PHONE_CHARS = re.compile(r"^\+?[0-9\s().\-]{7,25}$")


def contact_href(value: object) -> Optional[str]:
    """``mailto:`` for an e-mail address, ``tel:+1...`` for a US phone number, else None."""
    text = str(value or "").strip()
    if EMAIL.match(text):
        return "mailto:" + quote(text, safe="@.+-_")
    if PHONE_CHARS.match(text):
        digits = re.sub(r"[^0-9]", "", text)
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        if len(digits) == 10:
            return "tel:+1" + digits
    return None

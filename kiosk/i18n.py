"""Translation helpers usable from services (no request needed).

Services raise errors whose message is a lazy string: it is translated when it is shown, in
the visitor's language, and reads as the English source text in a plain test.
"""

from flask_babel import lazy_gettext as _l  # noqa: F401

"""PII and secret detection with validation, and redaction with stable placeholders.

Each detector is a regular expression that finds *candidates* plus, where the format has one, a
check that rejects look-alikes: the Luhn digit for payment cards and Canadian SINs, ISO 7064
mod-97 for IBANs (with the per-country length), the issuing ranges of card networks, the SSA's
never-issued ranges for US SSNs, HMRC's excluded prefixes for UK National Insurance numbers, the
mod-23 letter of Spanish DNI/NIE numbers, Verhoeff for Aadhaar, :mod:`ipaddress` for IPs and a
JSON header for JWTs. Validation is what keeps the false-positive rate on ordinary prompts (maths
word problems full of digits, code full of dotted numbers) near zero; see
``benchmarks/results/guards.md``.

Redaction replaces each finding with ``<TYPE_n>``; the same value (after removing separators and
case where they do not matter) gets the same placeholder within one :class:`Redactor`, i.e. one
request, so a model reading "<EMAIL_1> wrote to <EMAIL_1>" still sees that the two are one address.
:func:`restore` puts the originals back into the answer.

Why not Microsoft Presidio (evaluated, ``presidio-analyzer`` 2.2.366, MIT): its wheel installs
from PyPI, but it *requires* spaCy (a hard dependency, not an extra) and ``AnalyzerEngine``'s
default configuration loads the spaCy model ``en_core_web_lg``, which spaCy distributes from its
own release server, not from PyPI. This machine (and CI) reach PyPI only, where the only copies of
the English models are re-uploads by third parties, so the NLP half cannot be had offline from a
trustworthy source. Without it, what Presidio contributes is its pattern recognisers, which are
what this module implements, at the cost of spaCy (and thinc, blis, preshed, …) as an install and
an NLP pipeline on the request path, which would not meet the "signals under 1 ms" budget.
Presidio also has no recognisers for API keys, tokens or private keys, which matter most for an
LLM gateway. Names (PERSON, LOCATION) need that NER model and are therefore not detected here.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from polyroute.guards.base import Span, Verdict

# -- validators ---------------------------------------------------------------------------------


def _digits(value: str) -> str:
    return "".join(ch for ch in value if "0" <= ch <= "9")


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check used by payment cards and Canadian SINs."""
    digits = _digits(number)
    if not digits:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_network_ok(digits: str) -> bool:
    """Issuer ranges of the major networks, with their lengths: Luhn alone passes one random
    digit string in ten, the ranges cut that further."""
    n = len(digits)
    p2, p3, p4, p6 = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":
        return n in (13, 16, 19)                                   # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16                                             # Mastercard
    if p2 in (34, 37):
        return n == 15                                             # American Express
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649 or 622126 <= p6 <= 622925:
        return 16 <= n <= 19                                       # Discover
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19                                       # JCB
    if 300 <= p3 <= 305 or p2 in (36, 38, 39) or p4 == 3095:
        return 14 <= n <= 19                                       # Diners Club
    if p2 == 62:
        return 16 <= n <= 19                                       # UnionPay
    if p2 in (50, 56, 57, 58) or p2 == 67 or p2 == 63:
        return 12 <= n <= 19                                       # Maestro
    return False


def card_valid(value: str) -> bool:
    digits = _digits(value)
    return 13 <= len(digits) <= 19 and _card_network_ok(digits) and luhn_valid(digits)


#: IBAN length per country (ISO 13616 registry).
IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def iban_valid(value: str) -> bool:
    """Country length and the ISO 7064 mod-97-10 check digits."""
    compact = "".join(value.split()).upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def ssn_valid(value: str) -> bool:
    """US SSN: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    d = _digits(value)
    area, group, serial = int(d[:3]), int(d[3:5]), int(d[5:])
    return len(d) == 9 and 0 < area < 900 and area != 666 and group != 0 and serial != 0


_NINO_BAD_FIRST = set("DFIQUV")
_NINO_BAD_SECOND = set("DFIOQUV")
_NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def nino_valid(value: str) -> bool:
    """UK National Insurance number: HMRC's excluded letters and prefixes."""
    c = "".join(value.split()).upper()
    return (len(c) == 9 and c[0] not in _NINO_BAD_FIRST and c[1] not in _NINO_BAD_SECOND
            and c[:2] not in _NINO_BAD_PREFIX)


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni_valid(value: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter): mod-23 letter."""
    c = "".join(value.split()).upper().replace("-", "")
    if c[0] in "XYZ":
        c = str("XYZ".index(c[0])) + c[1:]
    return len(c) == 9 and c[:8].isdigit() and _DNI_LETTERS[int(c[:8]) % 23] == c[8]


_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def verhoeff_valid(number: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(_digits(number))):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return c == 0


def aadhaar_valid(value: str) -> bool:
    """India's Aadhaar: 12 digits, first not 0 or 1, Verhoeff check digit."""
    d = _digits(value)
    return len(d) == 12 and d[0] not in "01" and verhoeff_valid(d)


def ca_sin_valid(value: str) -> bool:
    """Canadian SIN: 9 digits, first not 0 or 8, Luhn."""
    d = _digits(value)
    return len(d) == 9 and d[0] not in "08" and luhn_valid(d)


def ip_valid(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def phone_valid(value: str) -> bool:
    """International numbers carry 8–15 digits (E.164), national ones 10–11. After the ``00``
    exit code at least 9 are required: a short digit run starting with zeros is an id, not a
    number dialled abroad."""
    d = _digits(value)
    if value.startswith("+"):
        return 8 <= len(d) <= 15
    if value.startswith("00"):
        return 9 <= len(d) - 2 <= 15
    return 10 <= len(d) <= 11


def jwt_valid(value: str) -> bool:
    """A JWT's first segment is base64url JSON naming its algorithm."""
    head = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        return isinstance(json.loads(decoded), dict)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False


# -- detectors ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Detector:
    """One PII type: a candidate pattern, an optional validator, and how to normalise a value
    for "same value → same placeholder". ``group`` names the regex group that is the value
    (e.g. the token after ``Bearer``); 0 is the whole match."""

    type: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    normalise: Callable[[str], str] = staticmethod(lambda v: v)  # type: ignore[assignment]
    group: int | str = 0
    #: A cheap test on the whole text; when False the pattern cannot match (skips the scan).
    needs: Callable[[str], bool] | None = None


def _has_digit(text: str) -> bool:
    return any("0" <= ch <= "9" for ch in text)


def _compact_digits(v: str) -> str:
    return _digits(v) or v


_B = r"(?<![\w@.+-])"   # left boundary: not inside a word, address or number
_E = r"(?![\w@-])"       # right boundary

#: In priority order: when two findings overlap, the earlier type wins (a JWT inside a Bearer
#: header is one BEARER_TOKEN; a card number is not also a phone number).
DETECTORS: tuple[Detector, ...] = (
    Detector("PRIVATE_KEY", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:(?!-----BEGIN )[\s\S]){0,20000}?"
        r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"),
        needs=lambda t: "-----BEGIN" in t),
    Detector("BEARER_TOKEN", re.compile(
        r"(?i:\bbearer)\s+(?P<tok>[A-Za-z0-9\-._~+/]{15,4095}[A-Za-z0-9\-_~+/]=*)"),
        group="tok",
        needs=lambda t: "earer" in t or "EARER" in t),
    Detector("JWT", re.compile(
        r"\beyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{0,4096}"),
        validate=jwt_valid, needs=lambda t: "eyJ" in t),
    Detector("API_KEY", re.compile(
        r"(?<![\w-])(?:"
        r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{20,200}"       # Anthropic
        r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}"   # OpenAI
        r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}"          # GitHub tokens
        r"|github_pat_[A-Za-z0-9_]{22,255}"                      # GitHub fine-grained
        r"|xox[abposr]-[A-Za-z0-9-]{10,250}"                     # Slack
        r"|AIza[0-9A-Za-z_-]{35}"                                # Google API key
        r"|(?:sk|rk)_live_[0-9A-Za-z]{16,99}"                    # Stripe secret
        r"|glpat-[0-9A-Za-z_-]{20}"                              # GitLab
        r"|hf_[A-Za-z]{34}"                                      # Hugging Face
        r")(?![\w-])"),
        needs=lambda t: any(p in t for p in ("sk-", "gh", "github_pat_", "xox", "AIza", "_live_",
                                             "glpat-", "hf_"))),
    Detector("AWS_ACCESS_KEY", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"
                                          r"(?![A-Z0-9])"),
             needs=lambda t: "IA" in t or "CCA" in t),
    Detector("EMAIL", re.compile(
        r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])"),
        normalise=str.lower, needs=lambda t: "@" in t),
    Detector("IBAN", re.compile(
        r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"),
        validate=iban_valid, normalise=lambda v: "".join(v.split()).upper(), needs=_has_digit),
    Detector("CREDIT_CARD", re.compile(
        _B + r"\d(?:[ -]?\d){12,18}" + _E), validate=card_valid,
        normalise=_compact_digits, needs=_has_digit),
    Detector("US_SSN", re.compile(_B + r"\d{3}([- ])\d{2}\1\d{4}" + _E),
             validate=ssn_valid, normalise=_compact_digits, needs=_has_digit),
    Detector("UK_NINO", re.compile(
        r"(?<![A-Za-z0-9])[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"),
        validate=nino_valid, normalise=lambda v: "".join(v.split()).upper(), needs=_has_digit),
    Detector("ES_DNI", re.compile(r"(?<![A-Za-z0-9])(?:\d{8}|[XYZ]\d{7})-?[A-Z](?![A-Za-z0-9])"),
             validate=es_dni_valid, normalise=lambda v: v.replace("-", "").upper(),
             needs=_has_digit),
    Detector("IN_AADHAAR", re.compile(_B + r"[2-9]\d{3}([ -])\d{4}\1\d{4}" + _E),
             validate=aadhaar_valid, normalise=_compact_digits, needs=_has_digit),
    Detector("CA_SIN", re.compile(_B + r"\d{3}([ -])\d{3}\1\d{3}" + _E),
             validate=ca_sin_valid, normalise=_compact_digits, needs=_has_digit),
    # IPv4 may follow "host:" but not a dot; a sentence's full stop may follow either form.
    Detector("IP_ADDRESS", re.compile(
        r"(?<![\w.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
        r"(?!\w|\.\d)"
        r"|(?<![\w.:])(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:]{2,39}"
        r"(?:%[\w.]{1,15})?(?![\w:]|\.\d)"),
        validate=lambda v: ip_valid(v.split("%", 1)[0]) and _has_digit(v),
        normalise=str.lower, needs=lambda t: "." in t or ":" in t),
    Detector("PHONE", re.compile(
        r"(?<![\w+.-])(?:"
        r"(?:\+|00)[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,6}"  # international, E.164
        r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"                # (555) 123-4567, (020) 7946 0018
        r"|\d{3}[.-]\d{3}[.-]\d{4}"                              # 555-123-4567, 555.123.4567
        r"|0\d{3,4} ?\d{3} ?\d{3,4}"                             # 07700 900123, 0161 496 0000
        r"|0\d{2} \d{4} \d{4}"                                   # 020 7946 0018
        r")(?![\w.-]?\d)"),
        validate=phone_valid, normalise=_compact_digits, needs=_has_digit),
)

#: Every type this module can detect, in priority order.
PII_TYPES: tuple[str, ...] = tuple(d.type for d in DETECTORS)
#: Types that are secrets rather than personal data (useful to block rather than redact).
SECRET_TYPES = frozenset({"PRIVATE_KEY", "BEARER_TOKEN", "JWT", "API_KEY", "AWS_ACCESS_KEY"})


def find_pii(text: str, types: Iterable[str] | None = None) -> list[Span]:
    """Validated, non-overlapping findings in ``text``, sorted by position."""
    wanted = None if types is None else set(types)
    # Accepted spans never overlap, so sorted by start they are sorted by end too: bisect finds
    # the two neighbours to test, keeping a text with thousands of findings linear-ish.
    starts: list[int] = []
    ends: list[int] = []
    found: list[Span] = []
    for det in DETECTORS:
        if wanted is not None and det.type not in wanted:
            continue
        if det.needs is not None and not det.needs(text):
            continue
        for m in det.pattern.finditer(text):
            start, end = m.span(det.group)
            value = m.group(det.group)
            if det.validate is not None and not det.validate(value):
                continue
            i = bisect.bisect_left(starts, start)
            if (i > 0 and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
                continue
            starts.insert(i, start)
            ends.insert(i, end)
            found.append(Span(start, end, det.type))
    found.sort(key=lambda s: s.start)
    return found


_NORMALISE = {d.type: d.normalise for d in DETECTORS}
_PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*_\d+)>")


class Redactor:
    """Replaces findings with ``<TYPE_n>`` placeholders, consistently across the texts of one
    request (system prompt, each turn): the same value always gets the same placeholder.

    A placeholder that already occurs in a text is never handed out, so restoring cannot turn a
    user's literal ``<EMAIL_1>`` into someone's address.
    """

    def __init__(self, types: Iterable[str] | None = None, *,
                 reserved: Iterable[str] = ()) -> None:
        """``reserved``: placeholder names never to hand out (e.g. a request's, when redacting
        its answer, so the two sets cannot be confused)."""
        self.types = None if types is None else tuple(types)
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self._reserved: set[str] = set(reserved)
        self.mapping: dict[str, str] = {}

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, _NORMALISE.get(kind, lambda v: v)(value))
        if key not in self._by_value:
            n = self._counts.get(kind, 0)
            while True:
                n += 1
                name = f"<{kind}_{n}>"
                if name not in self._reserved:
                    break
            self._counts[kind] = n
            self._by_value[key] = name
            self.mapping[name] = value
        return self._by_value[key]

    def redact(self, text: str, spans: Sequence[Span] | None = None) -> tuple[str, list[Span]]:
        """``text`` with every finding replaced, and the findings (offsets into ``text``)."""
        self._reserved.update(m.group(0) for m in _PLACEHOLDER.finditer(text))
        spans = find_pii(text, self.types) if spans is None else list(spans)
        parts: list[str] = []
        last = 0
        for span in spans:
            parts.append(text[last:span.start])
            parts.append(self._placeholder(span.type, text[span.start:span.end]))
            last = span.end
        parts.append(text[last:])
        return "".join(parts), spans


def restore(answer: str, mapping: Mapping[str, str]) -> str:
    """Put the original values back where the answer repeats a placeholder; unknown
    placeholders are left as they are."""
    if not mapping:
        return answer
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), answer)


class PiiGuard:
    """The PII guard. ``action``: ``redact`` (forward the redacted text; verdict ``flag``),
    ``flag`` (record only) or ``block``. ``types`` limits detection (default: all)."""

    name = "pii"

    def __init__(self, *, types: Iterable[str] | None = None, action: str = "redact") -> None:
        if action not in ("redact", "flag", "block"):
            raise ValueError(f"PII action must be redact, flag or block, not {action!r}")
        self.types = None if types is None else tuple(types)
        unknown = sorted(set(self.types or ()) - set(PII_TYPES))
        if unknown:
            raise ValueError(f"unknown PII types {unknown}; known: {list(PII_TYPES)}")
        self.action = action

    def check(self, text: str, embedding: np.ndarray | None = None,
              redactor: Redactor | None = None) -> Verdict:
        """``redactor`` carries placeholders across the texts of one request; by default each
        call starts afresh."""
        spans = find_pii(text, self.types)
        scores = {"pii": 1.0 if spans else 0.0}
        for span in spans:
            scores[f"pii.{span.type}"] = 1.0
        if not spans:
            return Verdict("allow", scores)
        kinds = sorted({s.type for s in spans})
        if self.action == "redact":
            redactor = redactor or Redactor(self.types)
            redacted, _ = redactor.redact(text, spans)
            return Verdict("flag", scores, tuple(spans),
                           f"redacted {len(spans)} PII span(s): {', '.join(kinds)}",
                           redacted=redacted, placeholders=dict(redactor.mapping))
        action = "block" if self.action == "block" else "flag"
        return Verdict(action, scores, tuple(spans), f"PII found: {', '.join(kinds)}")

    def check_many(self, texts: Sequence[str],
                   embeddings: np.ndarray | None = None) -> list[Verdict]:
        """Each text on its own (placeholders restart per text, as for separate requests)."""
        return [self.check(t) for t in texts]

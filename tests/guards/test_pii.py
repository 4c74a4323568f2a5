"""PII detection: known positives and look-alike negatives per type, redaction and restore."""

from __future__ import annotations

import base64
import json

import pytest

from polyroute.guards.pii import (
    PII_TYPES,
    PiiGuard,
    Redactor,
    card_valid,
    find_pii,
    iban_valid,
    luhn_valid,
    restore,
    verhoeff_valid,
)


def _jwt() -> str:
    def seg(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{seg({'alg': 'HS256', 'typ': 'JWT'})}.{seg({'sub': '1234567890'})}.abcDEF123_-x"


def _with_check_digit(prefix: str, valid) -> str:
    """The one final digit that makes ``prefix + d`` pass ``valid`` (checked to be unique)."""
    found = [prefix + str(d) for d in range(10) if valid(prefix + str(d))]
    assert len(found) == 1, found
    return found[0]


AADHAAR = _with_check_digit("23412341234", verhoeff_valid)
SIN = _with_check_digit("13069254", luhn_valid)

POSITIVES = [
    ("EMAIL", "write to John.Doe+tag@mail.example.co.uk today", "John.Doe+tag@mail.example.co.uk"),
    ("PHONE", "call +1 415 555 2671 now", "+1 415 555 2671"),
    ("PHONE", "E.164: +442079460018.", "+442079460018"),
    ("PHONE", "office (555) 123-4567 ext", "(555) 123-4567"),
    ("PHONE", "or 555-123-4567", "555-123-4567"),
    ("PHONE", "London 020 7946 0018", "020 7946 0018"),
    ("PHONE", "mobile 07700 900123", "07700 900123"),
    ("CREDIT_CARD", "visa 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "mc 5555-5555-5555-4444", "5555-5555-5555-4444"),
    ("CREDIT_CARD", "amex 378282246310005", "378282246310005"),
    ("CREDIT_CARD", "discover 6011111111111117", "6011111111111117"),
    ("IBAN", "pay GB82 WEST 1234 5698 7654 32 ok", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN", "DE89370400440532013000", "DE89370400440532013000"),
    ("IBAN", "FR1420041010050500013M02606", "FR1420041010050500013M02606"),
    ("US_SSN", "ssn 123-45-6789", "123-45-6789"),
    ("UK_NINO", "NI number AB 12 34 56 C", "AB 12 34 56 C"),
    ("ES_DNI", "DNI 12345678Z", "12345678Z"),
    ("ES_DNI", "NIE X1234567L", "X1234567L"),
    ("IN_AADHAAR", f"aadhaar {AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]}",
     f"{AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]}"),
    ("CA_SIN", f"SIN {SIN[:3]}-{SIN[3:6]}-{SIN[6:]}", f"{SIN[:3]}-{SIN[3:6]}-{SIN[6:]}"),
    ("IP_ADDRESS", "host 192.168.10.254 up", "192.168.10.254"),
    ("IP_ADDRESS", "v6 2001:db8::8a2e:370:7334 up", "2001:db8::8a2e:370:7334"),
    ("IP_ADDRESS", "loopback ::1 only", "::1"),
    ("API_KEY", "key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 here",
     "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("API_KEY", "sk-ant-api03-" + "x1Y2z3" * 10 + " end", "sk-ant-api03-" + "x1Y2z3" * 10),
    ("API_KEY", "token ghp_" + "a1B2c3D4e5" * 4 + " end", "ghp_" + "a1B2c3D4e5" * 4),
    ("AWS_ACCESS_KEY", "aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE"),
    ("JWT", f"jwt {_jwt()} end", _jwt()),
    ("BEARER_TOKEN", "Authorization: Bearer abcdefghijklmnop1234567890",
     "abcdefghijklmnop1234567890"),
    # sentence punctuation and brackets around a value are not part of it
    ("BEARER_TOKEN", "Send Authorization: Bearer abcdefghijklmnop1234567890.",
     "abcdefghijklmnop1234567890"),
    ("IP_ADDRESS", "connect to 150.71.103.192.", "150.71.103.192"),
    ("IP_ADDRESS", "host:10.0.0.1 is down", "10.0.0.1"),
    ("IP_ADDRESS", "v6 is 2001:db8::1843:4022:88e9.", "2001:db8::1843:4022:88e9"),
    ("PHONE", "what I have (+44200055080), right?", "+44200055080"),
    ("PHONE", "London +44 (0)20 7293 0972 today", "+44 (0)20 7293 0972"),
    ("PHONE", "from abroad 0044 20 7946 0018 works", "0044 20 7946 0018"),
    ("PRIVATE_KEY", "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n"
                    "-----END RSA PRIVATE KEY-----\ny",
     "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"),
]


@pytest.mark.parametrize(("kind", "text", "value"), POSITIVES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(POSITIVES)])
def test_known_positive_found_with_exact_offsets(kind: str, text: str, value: str) -> None:
    spans = find_pii(text)
    assert [(text[s.start:s.end], s.type) for s in spans] == [(value, kind)]


NEGATIVES = [
    ("CREDIT_CARD", "card 4111 1111 1111 1112 (Luhn fails)"),
    ("CREDIT_CARD", "number 1234567812345678 (no network, Luhn fails)"),
    ("CREDIT_CARD", "order id 9999999999999995 (Luhn passes, no network)"),
    ("IBAN", "GB82 WEST 1234 5698 7654 33 (check digits fail)"),
    ("IBAN", "DE89370400440532013001"),
    ("IBAN", "GB82WEST123456987654 (too short for GB)"),
    ("US_SSN", "000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000"),
    ("UK_NINO", "QQ 12 34 56 C and GB 12 34 56 A"),
    ("ES_DNI", "12345678A (wrong letter)"),
    ("IN_AADHAAR", f"{AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:11]}{(int(AADHAAR[11]) + 1) % 10}"),
    ("CA_SIN", f"{SIN[:3]} {SIN[3:6]} {SIN[6:8]}{(int(SIN[8]) + 1) % 10}"),
    ("IP_ADDRESS", "999.1.1.1 and 1.2.3 and std::vector and a::b"),
    ("PHONE", "12345 and 555-1234"),
    ("PHONE", "value=005975960; id 00237222"),
    ("JWT", "eyJhbGciOi.eyJzdWIiOi.sig is no JSON header"),
    ("EMAIL", "user@localhost and @handle and a@b"),
]


@pytest.mark.parametrize(("kind", "text"), NEGATIVES, ids=[k for k, _ in NEGATIVES])
def test_look_alike_rejected(kind: str, text: str) -> None:
    assert [s for s in find_pii(text) if s.type == kind] == []


def test_ordinary_numbers_and_code_are_not_pii() -> None:
    text = ("Compute 3.14159 * 2 for 2023-10-05 at 12:30:45; 1,234,567 apples; version 1.2.3; "
            "x = [1, 2, 3]; for i in range(10): print(i)  # 10000 iterations")
    assert find_pii(text) == []


def test_validators_on_reference_numbers() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert card_valid("4012888888881881") and not card_valid("4012888888881882")
    assert iban_valid("NL91 ABNA 0417 1643 00") and not iban_valid("NL91 ABNA 0417 1643 01")
    assert not iban_valid("XX00 0000 0000 0000")
    assert verhoeff_valid("2363") and not verhoeff_valid("2364")


def test_bearer_with_jwt_is_one_span() -> None:
    text = f"Authorization: Bearer {_jwt()}"
    assert [s.type for s in find_pii(text)] == ["BEARER_TOKEN"]


def test_type_filter() -> None:
    text = "a@b.co and +1 415 555 2671"
    assert [s.type for s in find_pii(text, ["PHONE"])] == ["PHONE"]


def test_every_type_has_a_positive_case() -> None:
    assert {k for k, _, _ in POSITIVES} == set(PII_TYPES)


# -- redaction ----------------------------------------------------------------------------------
MIXED = ("Hi, I'm at jane@corp.example (JANE@corp.example too), card 4111 1111 1111 1111, "
         "also 4111111111111111, phone +1 415 555 2671, IBAN DE89370400440532013000, "
         "key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 and other@corp.example.")


def test_redaction_round_trip_restores_original() -> None:
    redactor = Redactor()
    redacted, spans = redactor.redact(MIXED)
    assert spans and all(ch not in redacted for ch in ("@", "4111", "sk-proj"))
    assert restore(redacted, redactor.mapping) == MIXED.replace(
        "JANE@corp.example", "jane@corp.example").replace("4111111111111111",
                                                          "4111 1111 1111 1111")


def test_same_value_same_placeholder() -> None:
    redacted, _ = Redactor().redact(MIXED)
    assert redacted.count("<EMAIL_1>") == 2
    assert "<EMAIL_2>" in redacted
    assert redacted.count("<CREDIT_CARD_1>") == 2
    assert "<PHONE_1>" in redacted and "<IBAN_1>" in redacted and "<API_KEY_1>" in redacted


def test_placeholders_stable_across_texts_of_one_request() -> None:
    redactor = Redactor()
    first, _ = redactor.redact("system: contact ops@x.io")
    second, _ = redactor.redact("user: is ops@x.io or dev@x.io right?")
    assert first == "system: contact <EMAIL_1>"
    assert second == "user: is <EMAIL_1> or <EMAIL_2> right?"
    answer = "Use <EMAIL_2>, not <EMAIL_1>; <EMAIL_9> is unknown."
    assert restore(answer, redactor.mapping) == "Use dev@x.io, not ops@x.io; <EMAIL_9> is unknown."


def test_literal_placeholder_in_input_is_never_handed_out() -> None:
    redactor = Redactor()
    redacted, _ = redactor.redact("I typed <EMAIL_1> myself; mine is me@x.io")
    assert redacted == "I typed <EMAIL_1> myself; mine is <EMAIL_2>"
    assert restore(redacted, redactor.mapping) == "I typed <EMAIL_1> myself; mine is me@x.io"


def test_guard_actions() -> None:
    text = "mail me@x.io"
    redact = PiiGuard().check(text)
    assert redact.action == "flag" and redact.redacted == "mail <EMAIL_1>"
    assert redact.placeholders == {"<EMAIL_1>": "me@x.io"}
    assert redact.scores == {"pii": 1.0, "pii.EMAIL": 1.0}
    assert PiiGuard(action="block").check(text).action == "block"
    flagged = PiiGuard(action="flag").check(text)
    assert flagged.action == "flag" and flagged.redacted is None
    clean = PiiGuard().check("nothing here")
    assert clean.action == "allow" and clean.scores == {"pii": 0.0} and clean.redacted is None


def test_guard_rejects_unknown_type_and_action() -> None:
    with pytest.raises(ValueError, match="unknown PII types"):
        PiiGuard(types=["EMAIL", "SHOE_SIZE"])
    with pytest.raises(ValueError, match="redact, flag or block"):
        PiiGuard(action="restrict")


# -- hostile input ------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "lone \ud800 surrogate a@b.io \udfff",
    "1" * 200_000,
    "4111 " * 50_000,
    "a" * 100_000 + "@" + "b." * 50_000,
    "-----BEGIN RSA PRIVATE KEY-----" * 5_000,
    "Bearer " + "x" * 300_000,
    "::" * 100_000 + "1",
    "+" + " 1" * 100_000,
    "",
], ids=["surrogates", "digits", "card-runs", "email-runs", "key-headers", "bearer", "colons",
        "phone-runs", "empty"])
def test_hostile_input_does_not_crash(text: str) -> None:
    verdict = PiiGuard().check(text)
    for span in verdict.spans:
        assert 0 <= span.start < span.end <= len(text)
    if verdict.redacted is not None:
        assert restore(verdict.redacted, verdict.placeholders or {}) is not None


def test_surrogates_kept_and_offsets_right() -> None:
    text = "\ud800 me@x.io"
    (span,) = find_pii(text)
    assert text[span.start:span.end] == "me@x.io"
    assert PiiGuard().check(text).redacted == "\ud800 <EMAIL_1>"

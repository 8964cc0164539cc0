import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.identify.services import MOBILE_PATTERN, PhoneError, parse_phone


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13812345678", "13812345678"),
        (" 138 1234 5678 ", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),  # full-width digits from an IME
        ("+8613812345678", "13812345678"),
        ("008613812345678", "13812345678"),
    ],
)
def test_valid_numbers_are_normalised(raw, expected):
    assert parse_phone(raw) == expected


@pytest.mark.parametrize(
    "raw, code",
    [
        (None, "phone_empty"),
        ("", "phone_empty"),
        ("   ", "phone_empty"),
        ("1381234abcd", "phone_not_digits"),
        ("一三八", "phone_not_digits"),
        ("1381234567", "phone_wrong_length"),
        ("138123456789", "phone_wrong_length"),
        ("12812345678", "phone_bad_format"),
        ("23812345678", "phone_bad_format"),
        ("1" * 40, "phone_too_long"),
    ],
)
def test_invalid_numbers_are_refused_with_a_reason(raw, code):
    with pytest.raises(PhoneError) as info:
        parse_phone(raw)
    assert info.value.code == code
    assert info.value.status == 422


@given(st.text(max_size=40))
def test_any_input_is_either_a_valid_number_or_a_phone_error(raw):
    try:
        result = parse_phone(raw)
    except PhoneError:
        return
    assert MOBILE_PATTERN.match(result)

import pytest

from kiosk.errors import KioskError
from kiosk.validation import clean_text, parse_whole_number


class FieldError(KioskError):
    pass


def test_text_is_folded_and_refused_with_the_callers_error_type():
    assert clean_text("  张  建华 \n", 10, "name", error=FieldError) == "张 建华"
    for raw, code in [("", "name_required"), ("x" * 11, "name_too_long"), ("a\x00b", "name_invalid")]:
        with pytest.raises(FieldError) as info:
            clean_text(raw, 10, "name", error=FieldError, required=True)
        assert (info.value.code, info.value.field) == (code, "name")


def test_whole_numbers():
    assert parse_whole_number("１２", "n", error=FieldError) == 12
    assert parse_whole_number("-3", "n", error=FieldError) == -3
    assert parse_whole_number("+3", "n", error=FieldError, signed=False) == 3
    assert parse_whole_number("", "n", error=FieldError, optional=True) is None
    for raw, kwargs, code in [
        ("-3", {"signed": False}, "not_an_integer"),
        ("2.5", {}, "not_an_integer"),
        (True, {}, "not_an_integer"),
        ("", {}, "not_an_integer"),
        ("0", {"low": 1}, "n_out_of_range"),
        (7, {"high": 5, "range_code": "too_many"}, "too_many"),
    ]:
        with pytest.raises(FieldError) as info:
            parse_whole_number(raw, "n", error=FieldError, **kwargs)
        assert info.value.code == code


@pytest.mark.parametrize("raw", ["-5", "\u22125", "\uff0d5"])
def test_a_negative_where_zero_or_more_is_asked_is_out_of_range_not_not_a_number(raw):
    """ "−5" (U+2212, as a phone keyboard types it) used to be refused as 请输入整数."""
    with pytest.raises(FieldError) as info:
        parse_whole_number(raw, "points", error=FieldError, low=0, high=100, signed=False)
    assert (info.value.code, info.value.field) == ("points_out_of_range", "points")
    assert "0" in str(info.value.message) and "100" in str(info.value.message)
    with pytest.raises(FieldError) as info:
        parse_whole_number(raw, "n", error=FieldError, low=0, signed=False)
    assert str(info.value.message) == "Please enter 0 or more."

import logging

from hypothesis import given
from hypothesis import strategies as st

from kiosk.privacy import install_log_masking, mask_name, mask_phone, mask_phones_in_text


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("1381") == "138*"
    assert mask_phone("138") == "138"
    assert mask_phone("") == ""


def test_mask_name():
    assert mask_name("张建华") == "张*华"
    assert mask_name("李娜") == "李*"
    assert mask_name("欧阳小明") == "欧**明"
    assert mask_name("王") == "王"


def test_phones_in_text_are_masked_but_longer_digit_runs_are_not():
    assert mask_phones_in_text("call 13812345678 now") == "call 138****5678 now"
    assert mask_phones_in_text("phone=15900001111&x=1") == "phone=159****1111&x=1"
    assert mask_phones_in_text("order 9781381234567890") == "order 9781381234567890"
    assert mask_phones_in_text("12812345678") == "12812345678"  # not a mobile prefix


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.text(alphabet="abc ,=:", max_size=10))
def test_any_mobile_number_is_masked_in_text(phone, around):
    masked = mask_phones_in_text(around + phone + around)
    assert phone not in masked
    assert phone[:3] + "****" + phone[7:] in masked


def test_log_records_mask_phones_in_messages_args_and_tracebacks(app, caplog):
    install_log_masking(app)
    logger = logging.getLogger("kiosk.test")
    with caplog.at_level(logging.INFO):
        logger.info("visitor %s booked", "13812345678")
        try:
            raise ValueError("duplicate phone 15900001111")
        except ValueError:
            logger.exception("failed for 13700002222")
    text = caplog.text
    for phone in ("13812345678", "15900001111", "13700002222"):
        assert phone not in text
    assert "138****5678" in text and "159****1111" in text and "137****2222" in text

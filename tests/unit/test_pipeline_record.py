"""The in-flight record survives the hops between stages unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fraudapp.models import Click, Mouse
from fraudapp.pipeline import InFlight

text = st.text(max_size=20)
maybe = st.none() | text
mice = st.none() | st.builds(
    Mouse, st.integers(0, 10**6), st.integers(0, 10**9), st.floats(0, 1, allow_nan=False)
)
clicks = st.builds(
    Click,
    click_id=text,
    ts=st.floats(946684800, 4102444800),
    device_id=text,
    ip=st.ip_addresses().map(str),
    session_id=maybe,
    url=maybe,
    campaign_id=maybe,
    publisher_id=maybe,
    ad_id=maybe,
    user_agent=maybe,
    fingerprint=maybe,
    mouse=mice,
    country=st.none() | st.sampled_from(["DE", "US"]),
)


@given(clicks, st.integers(0, 2**40), st.dictionaries(st.sampled_from(["device_prior", "duplicate_of"]),
                                                      st.none() | st.integers(0, 100)))  # fmt: skip
def test_inflight_round_trip_keeps_every_field(click: Click, offset: int, features: dict) -> None:
    record = InFlight(click, ("clicks", 3, offset), 1.7e9, features)
    assert InFlight.decode(record.encode()) == record

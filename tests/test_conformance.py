"""vectorfair.testing.check_conformance, on the fake plugin: it passes on a
good demo and names the problem on a broken one."""

import pytest

from vectorfair.testing import check_conformance


def test_the_fake_demo_conforms(tmp_path):
    seen = check_conformance(tmp_path, "fake", "sample_size = 12\n")
    assert seen["sample_job"]["done"] == 12 and seen["rows_checked"] == 5 and seen["payloads_encoded"] > 0


def test_a_wrong_encoder_dimension_is_named(tmp_path, monkeypatch):
    from vectorfair_fake import FakeDemo

    real = FakeDemo.encode
    monkeypatch.setattr(
        FakeDemo,
        "encode",
        lambda self, payloads: (
            real(self, payloads)[:, :-1] if len(payloads) > 1 and payloads[0] != "x" else real(self, payloads)
        ),
    )
    with pytest.raises(AssertionError, match="did not load cleanly|encode returned"):
        check_conformance(tmp_path, "fake")


def test_a_search_that_finds_nothing_is_named(tmp_path):
    with pytest.raises(AssertionError, match="found nothing|answered 4"):
        check_conformance(tmp_path, "fake", query={"json": {"query": "zzz", "filter": {"tag": "no such tag"}}})

"""The bmpls reporter through its generated Python bindings (run by tests/it/python.rs).

Phase "offline": a keystore is created; fixes are reported while no validator answers (queued,
not lost); the same fix twice is one record; the keystore is reopened and the fixes still wait;
a second Reporter on the keystore is refused; bad input raises typed errors; the enrolment
request is written for the operator.

Phase "online" (after the test enrolled the patient): the keystore is reopened with the real
validators; a flush delivers the queued fixes in order; a new report is delivered at once.
"""

import math
import os
import sys
import time

import bmpls_mobile as bm


def consortium():
    def read(var):
        with open(os.environ[var], encoding="utf-8") as f:
            return f.read()

    return bm.Consortium(
        nodes=os.environ["BMPLS_NODES"].split(","),
        ca_pem=read("BMPLS_CA"),
        genesis_toml=read("BMPLS_GENESIS"),
    )


NOW_MS = int(time.time() * 1000)


def fix(i, **changes):
    values = dict(
        lat=52.3731 + i * 1e-4,
        lon=4.8922,
        accuracy_m=8.0,
        altitude_m=0.0,
        speed_m_s=1.2,
        battery_percent=80,
        trigger=bm.Trigger.PERIODIC,
        fix_time_ms=NOW_MS - 3_600_000 + i * 30_000,
    )
    values.update(changes)
    return bm.Fix(**values)


def expect(error, call):
    """Runs call, which must raise `error`; returns the exception's message. The exception is
    not kept: its traceback holds the frames of the call, and with them the Reporter."""
    try:
        call()
    except error as e:
        return str(e)
    raise AssertionError(f"expected {error!r}")


def offline(keystore):
    c = consortium()
    expect(bm.ReporterError.KeystoreMissing, lambda: bm.Reporter.open(keystore, c))
    reporter = bm.Reporter.create(keystore, c, None)
    assert len(reporter.patient_id()) == 32, reporter.patient_id()
    for i in range(3):
        outcome = reporter.report(fix(i))
        assert outcome.seq == i + 1, outcome
        assert outcome.sent.delivered == [], outcome
        assert outcome.sent.waiting == i + 1, outcome
        assert outcome.sent.last_failure, outcome
    assert reporter.queue(fix(2)) is None, "the same fix twice is one record"

    # Bad input: typed errors, checked in Rust, nothing queued.
    e = expect(bm.ReporterError.BadFix, lambda: reporter.report(fix(0, lat=math.nan)))
    assert "finite" in str(e), e
    expect(bm.ReporterError.BadFix, lambda: reporter.report(fix(0, battery_percent=101)))
    e = expect(bm.ReporterError.BadFix, lambda: reporter.report(fix(0, fix_time_ms=NOW_MS // 1000)))
    assert "seconds" in str(e), e
    # A value that does not fit the interface's types is refused by the bindings themselves,
    # before Rust sees it.
    expect((ValueError, OverflowError, TypeError), lambda: reporter.report(fix(0, battery_percent=300)))
    expect((ValueError, OverflowError, TypeError), lambda: reporter.report(fix(0, fix_time_ms=-1)))
    expect(bm.ReporterError.KeystoreExists, lambda: bm.Reporter.create(keystore, c, None))
    expect(bm.ReporterError.Busy, lambda: bm.Reporter.open(keystore, c))

    with open(os.environ["BMPLS_REQUEST"], "w", encoding="utf-8") as f:
        f.write(reporter.enrolment())
    patient = reporter.patient_id()
    # Dropping the last reference frees the Rust object at once (CPython counts references),
    # which releases the outbox's lock; Kotlin calls close(), Swift drops its last reference.
    del reporter

    reopened = bm.Reporter.open(keystore, c)
    assert reopened.patient_id() == patient
    status = reopened.outbox_status()
    assert status.waiting == 3, status
    assert status.next_seq == 4, status
    assert status.oldest_waiting_fix_time_ms == fix(0).fix_time_ms, status
    assert status.newest_waiting_fix_time_ms == fix(2).fix_time_ms, status
    assert status.refused == [], status
    flushed = reopened.flush(0)
    assert flushed.delivered == [] and flushed.waiting == 3, flushed


def online(keystore):
    reporter = bm.Reporter.open(keystore, consortium())
    flushed = reporter.flush(30)
    assert [d.seq for d in flushed.delivered] == [1, 2, 3], flushed
    assert flushed.waiting == 0 and flushed.refused == [], flushed
    outcome = reporter.report(fix(3))
    assert outcome.seq == 4, outcome
    assert [d.seq for d in outcome.sent.delivered] == [4], outcome
    assert reporter.outbox_status().waiting == 0
    reporter.disconnect()


if __name__ == "__main__":
    phase = sys.argv[1]
    {"offline": offline, "online": online}[phase](os.environ["BMPLS_KEYSTORE"])
    print(f"phase {phase}: ok")

from hostpulse.agent.rates import Counters, counter_delta


def test_first_reading_sets_the_baseline_and_the_second_gives_the_rate() -> None:
    c = Counters()
    assert c.rate("eth0", 1000, now=10.0) is None
    assert c.rate("eth0", 3000, now=12.0) == 1000.0
    assert c.rate("eth0", 3000, now=14.0) == 0.0


def test_a_32_bit_counter_that_wraps_gives_the_true_growth() -> None:
    c = Counters(bits=32)
    c.rate("x", 2**32 - 100, now=0.0)
    assert c.rate("x", 50, now=1.0) == 150.0


def test_a_64_bit_counter_that_wraps_gives_the_true_growth() -> None:
    c = Counters(bits=64)
    c.rate("x", 2**64 - 10, now=0.0)
    assert c.rate("x", 30, now=2.0) == 20.0


def test_auto_width_detects_32_bit_wrap_and_treats_big_counters_as_64_bit() -> None:
    assert counter_delta(2**32 - 1, 9, bits=None) == 10
    assert counter_delta(2**40, 9, bits=None) is None  # a 64-bit counter going down: reset
    assert counter_delta(2**64 - 1, 9, bits=None) == 10


def test_a_reset_gives_no_rate_never_a_negative_one_and_rates_resume_after() -> None:
    c = Counters()
    c.rate("disk", 5_000_000, now=0.0)
    assert c.rate("disk", 1_000, now=5.0) is None  # device recreated: value went down
    assert c.rate("disk", 6_000, now=10.0) == 1000.0  # measured from the new baseline


def test_no_rate_when_time_did_not_advance_and_the_older_baseline_is_kept() -> None:
    c = Counters()
    c.rate("x", 100, now=5.0)
    assert c.rate("x", 200, now=5.0) is None
    assert c.rate("x", 300, now=4.0) is None
    assert c.rate("x", 500, now=7.0) == 200.0  # (500 - 100) / (7 - 5)


def test_delta_reports_growth_and_elapsed() -> None:
    c = Counters()
    assert c.delta("x", 10, now=1.0) is None
    assert c.delta("x", 25, now=4.0) == (15, 3.0)


def test_retain_forgets_vanished_series() -> None:
    c = Counters()
    c.rate("a", 1, now=0.0)
    c.rate("b", 1, now=0.0)
    c.retain(["a"])
    assert len(c) == 1
    assert c.rate("b", 100, now=1.0) is None  # "b" came back: a new baseline, no bogus rate
    assert c.rate("a", 11, now=1.0) == 10.0

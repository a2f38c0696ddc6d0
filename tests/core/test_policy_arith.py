# mast/policy.py's arithmetic against answers worked by hand: the RFC 6298 RTO (the first sample
# sets SRTT = R, RTTVAR = R/2; later ones RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R| with the old SRTT,
# then SRTT = 7/8 SRTT + 1/8 R; RTO = SRTT + 4 RTTVAR clamped to [rto_min, rto_max]), the rank's
# RTT field (12 bits, capped: never above the costs) and the back-off of a FAILED path's probes
# (capped at failed_max, x METERED_FACTOR on a metered uplink and again for an address that never
# answered). The module is pure, so each function is fed known inputs and its answer checked.
from mast import policy
from mast.policy import Path, PROFILES, METERED_FACTOR

DEF = PROFILES["default"]  # rto 100..1000, failed 1000..10000
FAST = PROFILES["fast"]  # rto 20..40


class _Up:
    def __init__(self, priority=10, cost=0):
        self.name, self.priority, self.cost, self.natted = "u", priority, cost, False


class _Remote:
    def __init__(self, prio=10, cost=0):
        self.prio, self.cost = prio, cost


def _path(samples=(), cost=0):
    p = Path(_Up(cost=cost), ("10.0.0.1", 6278), 0)
    for r in samples:
        p.rtt_sample(r)
    return p


def test_before_any_sample_the_rto_is_the_initial_one_second():
    assert _path().rto(DEF) == 1000
    assert policy.rto(None, 0, DEF) == 1000


def test_the_first_sample_gives_srtt_r_and_rttvar_r_over_2():
    p = _path([200])
    assert (p.srtt, p.rttvar) == (200, 100)
    assert p.rto(DEF) == 600  # 200 + 4 * 100 (with RTTVAR = R: 1000)


def test_a_second_sample_moves_rttvar_by_a_quarter_then_srtt_by_an_eighth():
    p = _path([200, 40])
    # RTTVAR = (3 * 100 + |200 - 40|) // 4 = 115 (from the old SRTT), SRTT = (7 * 200 + 40) // 8
    assert (p.srtt, p.rttvar) == (180, 115)
    assert p.rto(DEF) == 640


def test_a_run_of_samples_gives_the_rfc_6298_answers():
    # e.g. the third: RTTVAR = (3 * 162 + |275 - 100|) // 4 = 165, SRTT = (7 * 275 + 100) // 8
    want = [(300, 150), (275, 162), (253, 165), (283, 185), (255, 194)]
    p = _path()
    got = []
    for r in (300, 100, 100, 500, 60):
        p.rtt_sample(r)
        got.append((p.srtt, p.rttvar))
    assert got == want, got
    assert p.rto(DEF) == 1000  # 255 + 776: capped


def test_the_rto_is_capped_at_rto_max_and_floored_at_rto_min():
    assert policy.rto(5000, 0, DEF) == 1000
    assert policy.rto(700, 200, DEF) == 1000
    assert policy.rto(30, 0, DEF) == 100
    assert policy.rto(500, 10, FAST) == 40
    assert policy.rto(5, 1, FAST) == 20
    assert _path([900]).rto(DEF) == 1000  # 900 + 1800
    assert _path([30]).rto(FAST) == 40  # 30 + 60


def test_a_steady_rtt_brings_the_rto_down_to_about_the_rtt():
    p = _path([100] * 40)
    assert p.srtt == 100 and p.rttvar == 0
    assert p.rto(DEF) == 101  # SRTT + max(1, 4 * RTTVAR)


def test_an_rtt_above_4095_ms_never_outranks_a_lower_cost():
    slow, quick = _path([5000]), _path([10])
    quick.uplink.cost = 1
    r = _Remote()
    assert policy.rank(slow, r) < policy.rank(quick, r)  # cost first, RTT only then
    assert policy.rank(slow, r) == policy.rank(_path([9000]), r)  # the RTT field is full
    assert policy.rank(_path([4000]), r) < policy.rank(slow, r)
    higher = _path([1])
    higher.uplink.priority = 11
    assert policy.rank(_path([60000]), r) < policy.rank(higher, r)


def _failed(backoff, cost=0):
    p = _path(cost=cost)
    p.state = policy.FAILED
    p.backoff = backoff
    return p


def test_a_failed_paths_probes_back_off_from_failed_min_to_failed_max():
    got = [policy.failed_backoff(_failed(n), DEF) for n in range(6)]
    assert got == [1000, 2000, 4000, 8000, 10000, 10000], got


def test_on_a_metered_uplink_the_back_off_goes_6_times_further():
    assert METERED_FACTOR == 6
    got = [policy.failed_backoff(_failed(n, cost=5), DEF) for n in (3, 5, 6, 7, 20)]
    assert got == [8000, 32000, 60000, 60000, 60000], got


def test_an_address_that_never_answered_backs_off_6_times_further_again():
    assert policy.failed_backoff(_failed(20), DEF, False) == 60000
    assert policy.failed_backoff(_failed(20, cost=1), DEF, False) == 360000
    assert policy.failed_backoff(_failed(2), DEF, False) == 4000  # the cap only
    assert policy.failed_backoff(_failed(20), DEF, True) == 10000


def test_the_rank_orders_by_priority_first_then_cost_then_rtt():
    r = _Remote(prio=10, cost=0)

    def ranked(prio, cost, rtt):
        p = _path([rtt])
        p.uplink.priority, p.uplink.cost = prio, cost
        return policy.rank(p, r)

    assert ranked(10, 200, 3000) < ranked(11, 0, 1)  # priority first, whatever the cost
    assert ranked(10, 0, 3000) < ranked(10, 1, 1)  # then cost, whatever the RTT
    assert ranked(10, 0, 5) < ranked(10, 0, 6)  # then the RTT
    assert ranked(10, 0, 5) < policy.rank(_path([5]), _Remote(prio=11))  # the peer's part too

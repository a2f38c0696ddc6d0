"""A fleet server's table of the last cookie accepted from each name (endpoint.py _last_stamp,
section 8: an older COOKIE-ECHO replayed is refused) keeps only what the last COOKIE_LIFE
accepted, give or take one sweep's step, however many boards come and go: it is swept every
64th entry (sweeping it whole at each entry made 5,000 boards joining at once quadratic).
Hundreds of boards, each an endpoint: CPython only (tests/core/test_fleet.py runs on boards)."""

from mast import policy

from test_fleet import _net, _board, _board_key


def _join(net, first, n):
    for i in range(first, first + n):
        name = "b%d.boards.example" % i
        _board(net, "b%d" % i, name, "10.%d.%d.2" % (1 + i // 250, i % 250), _board_key(name))
    net.run(net.now + 3000)


def test_the_last_cookie_table_forgets_the_boards_of_an_earlier_wave():
    net = _net()
    srv = net.nodes["srv"].ep
    _join(net, 0, 150)
    assert len(srv.by_peer) == 150 and len(srv._last_stamp) == 150
    net.run(net.now + policy.COOKIE_LIFE + 5000)  # the first wave's cookies are stale now
    _join(net, 150, 150)
    assert len(srv.by_peer) == 300  # all of them up,
    assert len(srv._last_stamp) < 150 + 64, len(srv._last_stamp)  # the first wave forgotten

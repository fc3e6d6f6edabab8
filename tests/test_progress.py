"""Progress on stderr away from a terminal: one line per 10%, for loops and training alike."""

from __future__ import annotations

from mmpo.progress import Milestones, progress


def reached(milestones: Milestones, counts: range) -> list[int]:
    return [count for count in counts if milestones.reached(count)]


def test_milestones_fall_at_every_tenth_and_at_the_end():
    assert reached(Milestones(20), range(1, 21)) == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert reached(Milestones(1000), range(1, 1001)) == list(range(100, 1001, 100))
    assert reached(Milestones(7), range(1, 8)) == [1, 2, 3, 4, 5, 6, 7]  # each step passes a tenth
    assert reached(Milestones(3, every=0.5), range(1, 4)) == [2, 3]


def test_a_resumed_count_reports_from_where_it_stands():
    assert reached(Milestones(100, done=50), range(51, 101)) == [60, 70, 80, 90, 100]


def test_nothing_to_count_reports_nothing():
    assert reached(Milestones(0), range(0, 5)) == []


def test_loops_log_ten_lines_away_from_a_terminal(caplog):
    with caplog.at_level("INFO", logger="mmpo"):
        items = list(progress(range(30), "scoring"))
    assert items == list(range(30))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scoring")]
    assert lines[0] == "scoring: 3/30 (10%)" and lines[-1] == "scoring: 30/30 (100%)"
    assert len(lines) == 10

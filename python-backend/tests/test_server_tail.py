"""EventTail: complete lines only, exact replay offsets, NaN made JSON-safe, torn tails left alone."""
from __future__ import annotations

import json
from pathlib import Path

from qlora_studio.events import EventWriter
from qlora_studio.server.tail import EventTail


def test_tail_replay_live_handover_and_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "r" / "events.jsonl"
    w = EventWriter(path, "r")
    tail = EventTail("r", path)
    for i in range(5):
        w.log(f"line {i}")
    assert tail.poll() == 5 and tail.last_seq == 5
    live: list[bytes] = []
    replay = tail.replay(2)
    tail.subscribe(live.extend)
    assert [json.loads(x)["seq"] for x in replay] == [3, 4, 5]
    with path.open("ab") as f:  # a writer killed mid-line
        f.write(b'{"run_id":"r","seq":6,"ty')
    assert tail.poll() == 0 and tail.last_seq == 5
    w.close()
    w2 = EventWriter(path, "r")  # a resume repairs the torn tail and continues the seq
    w2.emit("metrics", step=1, loss=float("nan"))
    w2.status("completed")
    assert tail.poll() == 2
    evs = [json.loads(x) for x in live]
    assert [e["seq"] for e in evs] == [6, 7]
    assert evs[0]["data"]["loss"] is None  # NaN is not JSON; the client would reject the frame
    assert tail.state == "completed" and tail.replay(0) and len(tail.replay(0)) == 7
    assert tail.replay(7) == []


def test_tail_ignores_garbage_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [{"run_id": "r", "seq": 1, "type": "log", "time": 1, "data": {}},
             "not json", {"run_id": "r", "seq": 1, "type": "log", "time": 1, "data": {}},
             {"run_id": "r", "seq": 2, "type": "status", "time": 2, "data": {"state": "failed"}}]
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    tail = EventTail("r", path)
    assert tail.poll() == 2 and tail.state == "failed"
    assert [json.loads(x)["seq"] for x in tail.replay(0)] == [1, 2]
    assert [json.loads(x)["seq"] for x in tail.replay(1)] == [2]

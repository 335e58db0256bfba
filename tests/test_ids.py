"""A person pastes task IDs in whatever form they copied them."""

from __future__ import annotations

import json

from tracker.ids import parse


def test_it_takes_one_id_per_line():
    assert parse("1712158011464906\n1712158011464907\n").ids == [
        "1712158011464906",
        "1712158011464907",
    ]


def test_it_takes_any_separators():
    text = (
        "1712158011464906, 1712158011464907;1712158011464908 | 1712158011464909\t1712158011464910"
    )
    assert len(parse(text).ids) == 5


def test_it_takes_a_submit_response():
    response = {
        "code": 1,
        "description": "提交成功",
        "result": "1712158011464906",
        "properties": {},
    }
    assert parse(json.dumps(response, ensure_ascii=False)).ids == ["1712158011464906"]


def test_it_takes_arrays_of_ids_and_of_task_objects():
    assert parse('["1712158011464906", 1712158011464907]').ids == [
        "1712158011464906",
        "1712158011464907",
    ]
    tasks = [
        {"id": "1712158011464906", "imageUrl": "https://gw/mj/image/1712158011464906"},
        {"id": "1712158011464907", "status": "SUCCESS"},
    ]
    parsed = parse(json.dumps(tasks))
    assert parsed.ids == ["1712158011464906", "1712158011464907"]
    assert parsed.duplicates == []  # the imageUrl only repeats the task's own id


def test_it_takes_one_json_object_per_line():
    lines = '{"code":1,"result":"1712158011464906"}\n{"code":1,"result":"1712158011464907"}'
    assert parse(lines).ids == ["1712158011464906", "1712158011464907"]


def test_it_finds_ids_inside_urls():
    text = (
        "https://gw.example.com/mj/task/1712158011464906/fetch\n"
        "https://gw.example.com/mj/image/1712158011464907?rand=123\n"
        "https://mjdash.example.com/tasks/1712158011464908/"
    )
    assert parse(text).ids == ["1712158011464906", "1712158011464907", "1712158011464908"]


def test_it_reports_each_duplicate_once():
    parsed = parse("1712158011464906 1712158011464906 1712158011464906 1712158011464907")
    assert parsed.ids == ["1712158011464906", "1712158011464907"]
    assert parsed.duplicates == ["1712158011464906"]


def test_it_rejects_bad_tokens_with_a_reason():
    parsed = parse("1712158011464906 hello 12345 1712158011464906abc")
    assert parsed.ids == ["1712158011464906"]
    reasons = dict(parsed.rejected)
    assert "10 to 32 digits" in reasons["hello"]
    assert "too short" in reasons["12345"]
    assert "other characters" in reasons["1712158011464906abc"]


def test_it_never_echoes_an_api_key():
    parsed = parse("sk-abcdefghijklmnopqrstuvwxyz 1712158011464906")
    assert parsed.ids == ["1712158011464906"]
    assert parsed.rejected == [
        ("sk-…", "this looks like an API key, not a task ID (it was not stored)")
    ]


def test_it_ignores_json_keys_in_json_ish_text():
    text = '"result": "1712158011464906",\n"code": 1'
    parsed = parse(text)
    assert parsed.ids == ["1712158011464906"]


def test_empty_text_gives_nothing():
    parsed = parse("   \n ")
    assert (parsed.ids, parsed.rejected, parsed.duplicates) == ([], [], [])


def test_it_caps_one_paste_at_a_thousand_ids():
    text = "\n".join(str(1712158011464906 + i) for i in range(1005))
    parsed = parse(text)
    assert len(parsed.ids) == 1000
    assert parsed.truncated

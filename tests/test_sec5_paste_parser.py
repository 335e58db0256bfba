"""The paste parser against hostile and arbitrary input: never an error, never slow, only
ASCII-digit IDs that were really pasted, each once, and never an API key echoed back.

No database and no network: parse() is a pure function of the pasted text.
"""

from __future__ import annotations

import json
import random
import re
import string
import time

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tracker.ids import MAX_IDS, MAX_JSON_DEPTH, MAX_REJECTS, SHOWN_CHARS, _from_json, parse

ASCII_ID = re.compile(r"[0-9]{10,32}")
UNMASKED_KEY = re.compile(r"(?<![a-z0-9])sk-(?!…)", re.IGNORECASE)
PASTE_LIMIT = 200_000  # tracker/forms.py MAX_PASTE

ARABIC_INDIC = "١٧٣٢٠٠٠٠٠٠٠٠٠١٢٣"
FULLWIDTH = "１７３２０００００００００１２３"


def check_invariants(text: str) -> None:
    """What must hold for any paste at all."""
    parsed = parse(text)
    for task_id in parsed.ids:
        assert ASCII_ID.fullmatch(task_id), task_id
        # JSON may spell a digit as \u0031; only then can an ID be absent from the raw text.
        assert task_id in text or "\\u" in text, task_id
    assert len(parsed.ids) == len(set(parsed.ids))
    assert len(parsed.ids) <= MAX_IDS
    assert parsed.truncated <= (len(parsed.ids) == MAX_IDS)
    assert len(parsed.duplicates) == len(set(parsed.duplicates))
    assert set(parsed.duplicates) <= set(parsed.ids)
    assert len(parsed.rejected) <= MAX_REJECTS
    assert len(parsed.rejected) == len(set(parsed.rejected))
    assert parsed.more_rejected >= 0
    assert parsed.more_rejected == 0 or len(parsed.rejected) == MAX_REJECTS
    for token, reason in parsed.rejected:
        assert len(token) <= SHOWN_CHARS
        assert not UNMASKED_KEY.search(token), token
        assert not UNMASKED_KEY.search(reason), reason
    event("found IDs" if parsed.ids else "found no IDs")
    event("some rejects" if parsed.rejected else "no rejects")


# --- strategies ---------------------------------------------------------------------------

task_ids = st.text(alphabet=string.digits, min_size=10, max_size=32)
separators = st.lists(
    st.sampled_from(
        [" ", "  ", "\t", "\n", "\r\n", ",", ", ", ";", "|", " | ", "\u00a0", "\u3000", "，", "、"]
    ),
    min_size=1,
    max_size=3,
).map("".join)

FRAGMENTS = [
    "[", "]", "{", "}", '"', "'", "\\", ":", ",", ";", "|", " ", "\n", "\r", "\t", "\x00",
    "\u2028", "\u00a0", "1712158011464906", "12345", "0", "9" * 40, ARABIC_INDIC, FULLWIDTH,
    "١", "９", "²", "sk-", "SK-abc", "task-", "key=sk-secret", "http://", "https://gw/",
    "/mj/task/", "/mj/image/", "/tasks/", "?", "#", '"result":', '"id":', '"ids":[', "null",
    "true", "-", ".", "e", "\\u0031", "\\ud800", "`", "<", ">", "(", ")", "=",
]  # fmt: skip
fragment_soup = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join)
nonempty_soup = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=20).map("".join)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    task_ids,
    task_ids.map(int),
    st.sampled_from([ARABIC_INDIC, FULLWIDTH, "sk-abcdefghijklmnop", "https://gw/mj/task/1/x"]),
)
json_keys = st.one_of(
    st.sampled_from(["result", "id", "ids", "taskId", "task_ids", "results", "imageUrl", "code"]),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(json_keys, children, max_size=6)
    ),
    max_leaves=20,
)
json_texts = st.builds(
    lambda value, ascii_only, indent: json.dumps(value, ensure_ascii=ascii_only, indent=indent),
    json_values,
    st.booleans(),
    st.sampled_from([None, 0, 2]),
)
json_lines = st.lists(json_texts, min_size=1, max_size=8).map("\n".join)

OPENERS = ["[", "{", '{"a":', '{"result":', '{"ids":[', "[[", '["', "{{", " [", "[\n"]
CLOSERS = ["]", "}", "]}", "", '"]']


@st.composite
def deep_nesting(draw) -> str:
    depth = draw(st.one_of(st.integers(0, 300), st.integers(MAX_JSON_DEPTH - 2, 20_000)))
    opener = draw(st.sampled_from(OPENERS))
    core = draw(st.one_of(task_ids.map(json.dumps), task_ids, fragment_soup, json_texts))
    closer = draw(st.sampled_from(CLOSERS))
    closing = draw(st.sampled_from([depth, 0, depth // 2, depth + 1]))
    event("deeper than the JSON limit" if depth > MAX_JSON_DEPTH else "within the JSON limit")
    return opener * depth + core + closer * closing


@st.composite
def huge_repetition(draw) -> str:
    unit = draw(st.one_of(nonempty_soup, st.text(min_size=1, max_size=12)))
    times = draw(st.integers(1, PASTE_LIMIT // len(unit)))
    return unit * times


any_paste = st.one_of(
    st.text(),
    st.text(st.characters(codec="utf-8")),
    st.text(st.characters(exclude_categories=())),  # lone surrogates too
    fragment_soup,
    json_texts,
    json_lines,
    deep_nesting(),
)


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(any_paste)
def test_parse_never_raises_and_returns_only_ascii_ids_that_were_pasted(text):
    check_invariants(text)


@settings(max_examples=30, deadline=None)
@given(st.one_of(deep_nesting(), huge_repetition()))
def test_deep_nesting_and_huge_repetition_never_raise(text):
    check_invariants(text)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_ids_joined_by_any_separators_round_trip_in_order(data):
    ids = data.draw(st.lists(task_ids, unique=True, min_size=1, max_size=30))
    between = data.draw(st.lists(separators, min_size=len(ids) + 1, max_size=len(ids) + 1))
    text = between[0] + "".join(i + sep for i, sep in zip(ids, between[1:], strict=True))
    parsed = parse(text)
    assert parsed.ids == ids
    assert (parsed.duplicates, parsed.rejected) == ([], [])


@settings(max_examples=100, deadline=None)
@given(st.lists(task_ids, unique=True, min_size=1, max_size=30), st.data())
def test_ids_in_submit_responses_round_trip_in_order(ids, data):
    shape = data.draw(st.sampled_from(["one per line", "task list", "result list", "pretty"]))
    ascii_only = data.draw(st.booleans())
    as_number = data.draw(st.booleans())

    def value(task_id: str):  # a gateway may send the id as a JSON number
        return int(task_id) if as_number and task_id[0] != "0" else task_id

    if shape == "one per line":
        responses = [
            {"code": 1, "description": "提交成功", "result": value(i), "properties": {}}
            for i in ids
        ]
        text = "\n".join(json.dumps(r, ensure_ascii=ascii_only) for r in responses)
    elif shape == "task list":
        tasks = [
            {"id": value(i), "imageUrl": f"https://gw/mj/image/{i}", "status": "SUCCESS"}
            for i in ids
        ]
        text = json.dumps(tasks, ensure_ascii=ascii_only)
    elif shape == "result list":
        text = json.dumps({"code": 1, "ids": [value(i) for i in ids]}, ensure_ascii=ascii_only)
    else:
        text = json.dumps({"code": 1, "result": [value(i) for i in ids]}, indent=2)
    event(shape)
    assert parse(text).ids == ids


@settings(max_examples=100, deadline=None)
@given(st.lists(task_ids, unique=True, min_size=1, max_size=30), st.data())
def test_ids_in_urls_round_trip_in_order(ids, data):
    templates = st.sampled_from(
        [
            "https://gw.example.com/mj/task/{}/fetch",
            "https://gw.example.com/mj/image/{}?rand=123",
            "https://mjdash.example.com/tasks/{}/",
            "http://10.0.0.1:8080/mj/task/{}",
            "<https://gw/mj/image/{}#top>",
        ]
    )
    urls = [data.draw(templates).format(i) for i in ids]
    between = data.draw(st.lists(separators, min_size=len(ids), max_size=len(ids)))
    text = "".join(url + sep for url, sep in zip(urls, between, strict=True))
    assert parse(text).ids == ids


@settings(max_examples=100, deadline=None)
@given(
    fragment_soup,
    st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=40),
    fragment_soup,
)
def test_an_api_key_anywhere_in_a_paste_is_never_echoed(before, secret, after):
    for glue in (" ", "=", '"', ":", "\n", "?key="):
        text = f"{before}{glue}sk-{secret}{after}"
        parsed = parse(text)
        shown = repr((parsed.rejected, parsed.duplicates, parsed.ids))
        assert f"sk-{secret[:12]}" not in shown


# --- the three attacks, one by one --------------------------------------------------------


def test_5000_open_brackets_are_no_recursion_error():
    for text in ("[" * 5000, "{" * 5000, '{"a":' * 5000, '[{"ids":' * 5000):
        parsed = parse(text)
        assert parsed.ids == []


def test_deeply_nested_valid_json_still_gives_its_id():
    deep = "[" * 5000 + '"1712158011464906"' + "]" * 5000
    assert parse(deep).ids == ["1712158011464906"]
    deep_objects = '{"a":' * 5000 + '{"result": "1712158011464906"}' + "}" * 5000
    parse(deep_objects)  # read as plain text: no error is all that is asked


def test_json_within_the_depth_limit_is_still_read_as_json():
    depth = MAX_JSON_DEPTH - 1
    text = '{"a":' * (depth - 1) + '{"result": "1712158011464906", "code": 1}' + "}" * (depth - 1)
    parsed = parse(text)
    assert parsed.ids == ["1712158011464906"]
    assert parsed.rejected == []


def test_the_json_walk_keeps_its_own_stack_at_any_depth():
    value: object = ["1712158011464906"]
    for _ in range(100_000):
        value = [value]
    assert list(_from_json(value)) == ["1712158011464906"]


def junk_paste(size: int = PASTE_LIMIT) -> str:
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits
    tokens, length = [], 0
    while length < size:
        token = "".join(rng.choices(alphabet, k=rng.randint(1, 12)))
        tokens.append(token)
        length += len(token) + 1
    return " ".join(tokens)[:size]


def test_a_200kb_junk_paste_parses_in_under_two_seconds():
    text = junk_paste()
    started = time.perf_counter()
    parse(text)
    assert time.perf_counter() - started < 2.0


def test_thousands_of_distinct_rejects_are_capped_and_counted():
    text = " ".join(f"bad{i}" for i in range(20_000))
    parsed = parse(text)
    assert len(parsed.rejected) == MAX_REJECTS
    assert parsed.rejected[0] == ("bad0", "task IDs are 10 to 32 digits")
    assert parsed.more_rejected == 20_000 - MAX_REJECTS


def test_a_long_token_is_shown_cut_short():
    parsed = parse("x" * PASTE_LIMIT)
    [(token, _reason)] = parsed.rejected
    assert len(token) <= SHOWN_CHARS and token.endswith("…")


def test_many_duplicates_are_reported_once_each():
    ids = [str(1712158011464906 + n) for n in range(500)]
    parsed = parse(" ".join(ids * 20))
    assert parsed.ids == ids
    assert parsed.duplicates == ids


def test_arabic_indic_digits_are_no_task_id():
    parsed = parse(ARABIC_INDIC)
    assert parsed.ids == []
    assert parsed.rejected == [(ARABIC_INDIC, parsed.rejected[0][1])]
    assert "digits 0-9 only" in parsed.rejected[0][1]


def test_fullwidth_digits_are_no_task_id():
    parsed = parse(f"{FULLWIDTH} 1712158011464906")
    assert parsed.ids == ["1712158011464906"]
    assert "digits 0-9 only" in dict(parsed.rejected)[FULLWIDTH]


def test_other_digits_are_refused_in_json_and_urls_and_mixed_in_too():
    for text in (
        json.dumps({"result": ARABIC_INDIC}, ensure_ascii=False),
        json.dumps({"result": FULLWIDTH}),  # \uff11 escapes
        f"https://gw/mj/task/{ARABIC_INDIC}/fetch",
        "1712158011464906١",
        "¹⁷¹²¹⁵⁸⁰¹¹⁴⁶⁴⁹⁰⁶",
        f"[{ARABIC_INDIC}]",
    ):
        parsed = parse(text)
        assert parsed.ids == [], text
        assert "digits 0-9 only" in parsed.rejected[0][1], text

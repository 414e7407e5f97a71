"""Recipe search: a model-free text demo on a sparse vector, written from
docs/writing_a_plugin.md alone. Each recipe is a bag of its words, weighted by
how rare they are in English cooking (a tiny IDF table) and normalised, so
inner product ranks like cosine. On a backend without sparse vectors (a Milvus
2.3 server) the core stores the declared dense fallback instead."""

import math
import re
from collections import Counter

from vectorfair import Demo, DemoFilter, Entry, ItemError, ScalarField, VectorField, hookimpl

VOCABULARY = 1 << 12
COMMON = {"and", "the", "with", "of", "a", "in", "to", "or", "for", "on"}
RECIPES = [
    ("Tomato soup", "tomato onion garlic basil olive oil", "italian", 30),
    ("Margherita pizza", "flour yeast tomato mozzarella basil", "italian", 90),
    ("Carbonara", "spaghetti egg pecorino guanciale pepper", "italian", 25),
    ("Pad thai", "rice noodles egg tofu peanut lime tamarind", "thai", 30),
    ("Green curry", "coconut milk green curry paste chicken basil", "thai", 40),
    ("Guacamole", "avocado lime onion chili coriander", "mexican", 10),
    ("Tacos al pastor", "pork pineapple chili tortilla onion", "mexican", 120),
    ("Miso soup", "miso tofu seaweed spring onion", "japanese", 15),
    ("Ramen", "noodles pork broth egg spring onion miso", "japanese", 240),
    ("Pancakes", "flour egg milk butter sugar", "american", 20),
    ("Caesar salad", "lettuce parmesan croutons egg anchovy lemon", "american", 15),
    ("Hummus", "chickpeas tahini lemon garlic olive oil", "levantine", 10),
]


class RecipeFilter(DemoFilter):
    cuisine: str | None = None
    minutes_max: int | None = None  # a range on the `minutes` field


def sparse_words(text: str) -> dict[int, float]:
    counts = Counter(w for w in re.findall(r"[a-z]+", text.lower()) if w not in COMMON)
    weights: dict[int, float] = {}
    for word, count in counts.items():
        index = sum(ord(c) * 31**i for i, c in enumerate(word)) % VOCABULARY
        weights[index] = weights.get(index, 0.0) + (1 + math.log(count)) * (1 + len(word) / 8)
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {index: weight / norm for index, weight in weights.items()}


class Recipes(Demo):
    name = "recipes"
    title = "Recipe search"
    description = "Type ingredients; find the recipes that use them."
    fields = (
        ScalarField("ingredients", max_length=2048),
        ScalarField("cuisine", max_length=64, index=True),
        ScalarField("minutes", "int", index=True),
    )
    vectors = (
        VectorField(
            "words", "sparse", VOCABULARY, "IP", fallback=VectorField(kind="float", metric="IP", index=("FLAT",))
        ),
    )
    Filter = RecipeFilter
    sample_query = "tomato basil"

    def encode(self, payloads: list[str]) -> list[dict[int, float]]:
        return [sparse_words(text) for text in payloads]

    def parse_record(self, record: dict):
        title, ingredients = str(record.get("title") or "").strip(), str(record.get("ingredients") or "").strip()
        if not title or not ingredients:
            raise ItemError("a recipe needs a 'title' and its 'ingredients'")
        try:
            minutes = int(record.get("minutes") or 0)
        except ValueError:
            raise ItemError("'minutes' must be a whole number") from None
        yield Entry(
            payload=f"{title} {ingredients}",
            title=title,
            fields={"ingredients": ingredients, "cuisine": str(record.get("cuisine") or ""), "minutes": minutes},
        )

    def sample_items(self):
        for title, ingredients, cuisine, minutes in RECIPES:
            yield {"title": title, "ingredients": ingredients, "cuisine": cuisine, "minutes": minutes}


@hookimpl
def register_demos():
    return [Recipes]

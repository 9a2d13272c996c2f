"""The gibberish check's text heuristics."""

import pytest

from acdc.population.gibberish import gibberish_reason, sanity_prompts


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is Paris.",
        "Cows, sheep and chickens live on a farm.",
        "The ocean covers about 71 % of the Earth's surface.",
        # SmolLM2-135M's own answer to the farm prompt: a list is not prose
        "1. Cow (Loxodonta cinerea)\n2. Sheep (Ovis densa)\n3. Sheep (Ovis spp.)",
        "- Cows\n- Domestic goats and sheep\n- Chickens, ducks, geese and turkeys",
    ],
)
def test_plain_answers_pass(text: str):
    assert gibberish_reason(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("the the the the the the the the the the", "repeated"),
        ("Paris is nice and warm. " * 6, "repetitive"),
        ("#### 1234 !!!! 5678 ???? 0000", "few letters"),
        ("ab\x00\x01\x02\x03\x04\x05\x06\x07\x08", "non-printable"),
    ],
)
def test_gibberish_is_rejected_with_a_reason(text: str, reason: str):
    found = gibberish_reason(text)
    assert found is not None and reason in found


def test_sanity_prompts_come_from_the_prompt_file():
    prompts = sanity_prompts()
    assert len(prompts) >= 3
    assert all(p.endswith((".", "?")) for p in prompts)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "igail disseminCreateModelmonton clippingasesigmoidCre hoseirieamples dissemin "
            "dissemin disseminfirehose incarcORD policymCCCirie ALTHRace taxpay erad",
            "",
        ),
        ("dog dog cat cat bird bird fish fish horse horse cow cow", "stuttering"),
        ("purple elephant calculator mountain sandwich velocity umbrella quantum", "word salad"),
        (
            "Farm animals:\npurple elephant calculator mountain sandwich velocity umbrella "
            "quantum tractor",
            "word salad",
        ),
    ],
)
def test_word_salad_from_a_broken_model_is_rejected(text: str, reason: str):
    found = gibberish_reason(text)
    assert found is not None and reason in found

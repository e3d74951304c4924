"""Zero-shot classifier: templates averaged after normalising, then normalised again (open_clip)."""

import numpy as np

from frx.evals import prompts, zeroshot


def test_class_embeddings_average_normalised_prompts_and_renormalise():
    rng = np.random.default_rng(0)
    prompts_emb = rng.normal(size=(3 * 4, 5))
    prompts_emb /= np.linalg.norm(prompts_emb, axis=1, keepdims=True)  # what embed_texts returns
    classes = zeroshot.classifier(prompts_emb, 3)
    for c in range(3):
        mean = prompts_emb[4 * c : 4 * c + 4].mean(axis=0)
        np.testing.assert_allclose(classes[c], mean / np.linalg.norm(mean), rtol=1e-12)


def test_top1_and_top5_by_cosine_similarity():
    classes = np.eye(8)
    images = np.eye(8)[[0, 1, 2, 3]] + 0.01 * np.arange(8)  # closest: their own class
    images[3] = np.eye(8)[6] * 0.5 + np.eye(8)[3] * 0.4  # class 3's image looks like class 6
    scores = zeroshot.accuracies(images, np.array([0, 1, 2, 3]), classes)
    assert scores == {"zeroshot_top1": 0.75, "zeroshot_top5": 1.0}


def test_the_shipped_imagenet_names_and_templates_are_openais():
    names, templates = prompts.imagenet_classnames(), prompts.templates("openai_imagenet")
    assert len(names) == 1000 and names[0] == "tench" and names[999] == "toilet paper"
    assert names[207] == "Golden Retriever"
    assert len(templates) == 80 and templates[0] == "a bad photo of a {}." and all("{}" in t for t in templates)
    assert len(prompts.templates("simple_imagenet")) == 7 and prompts.templates("photo") == ("a photo of a {}.",)

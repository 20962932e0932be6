"""Reproducing the seed papers' tables: per-paper recipes and their published numbers
(:mod:`mer.reproduce.recipes`)."""

from mer.reproduce.recipes import (
    DATASETS,
    MODALITIES,
    PAPERS,
    PUBLISHED_CSV,
    RECIPE_DIR,
    Recipe,
    available_recipes,
    condition_label,
    load_recipe,
    published_results,
    recipe_table,
    recipes_markdown,
    update_recipes_doc,
    validate_recipe,
)

__all__ = [
    "DATASETS",
    "MODALITIES",
    "PAPERS",
    "PUBLISHED_CSV",
    "RECIPE_DIR",
    "Recipe",
    "available_recipes",
    "condition_label",
    "load_recipe",
    "published_results",
    "recipe_table",
    "recipes_markdown",
    "update_recipes_doc",
    "validate_recipe",
]

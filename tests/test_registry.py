import pytest

from attn_research.registry import Registry, UnknownVariantError


def test_unknown_name_lists_valid_names_and_config_key():
  registry = Registry("colour", "model.colour")
  registry.register("red")(object)
  registry.register("blue")(object)
  with pytest.raises(UnknownVariantError) as error:
    registry.get("green")
  assert str(error.value) == "Unknown colour 'green' for model.colour. Valid names: red, blue."


def test_duplicate_registration_is_refused():
  registry = Registry("colour", "model.colour")
  registry.register("red")(object)
  with pytest.raises(ValueError, match="registered twice"):
    registry.register("red")(object)

"""The documentation stays true to the code: every setting documented, the README's code map matching the tree."""

import dataclasses
import re

from config.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text()
CONFIGURATION = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
ENV_EXAMPLE = (PROJECT_ROOT / ".env.example").read_text()


def setting_names() -> list[str]:
    return [field.name for field in dataclasses.fields(Settings)]


def test_every_setting_is_in_the_configuration_page_and_in_env_example():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION))
    exemplified = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, re.MULTILINE))
    assert [name for name in setting_names() if name not in documented] == []
    assert [name for name in setting_names() if name not in exemplified] == []


def test_the_readme_stays_a_front_page():
    assert len(README.splitlines()) <= 200


def test_the_code_map_names_every_module_of_the_three_packages():
    code_map = README[README.index("## Code map") : README.index("## Documentation")]
    named = set(re.findall(r"`([\w/]+\.py)`", code_map))
    missing = []
    for package in ("webapp", "jobs", "tasks"):
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            relative = path.relative_to(PROJECT_ROOT / package).as_posix()
            if path.name != "__init__.py" and relative not in named:
                missing.append(f"{package}/{relative}")
    assert missing == []


def test_every_file_the_code_map_names_exists():
    code_map = README[README.index("## Code map") : README.index("## Documentation")]
    paths = set(re.findall(r"`((?:deploy|config|docs|client|bench|tests)/[\w./]*)`", code_map))
    assert paths and [path for path in paths if not (PROJECT_ROOT / path).exists()] == []

"""Dependencies run one way: webapp → jobs ← tasks, both over config; models is the network alone.

Read from the source (every import statement, at any depth) and checked at run time
in a fresh web process, so a new import that breaks the direction fails here.
"""

import ast
import subprocess
import sys

from config.settings import PROJECT_ROOT

PACKAGES = ("config", "jobs", "webapp", "tasks", "models")
# What each package may import from the project's own packages.
ALLOWED = {
    "config": set(),
    "models": {"config"},
    "jobs": {"config", "celeryconfig"},
    "webapp": {"config", "jobs", "celeryconfig"},
    "tasks": {"config", "jobs", "models", "celeryconfig"},
    # The root modules are checked too: Celery's options read the broker layout, and wsgi is the web's entry point.
    "celeryconfig": {"config", "jobs"},
    "wsgi": {"config", "jobs", "webapp"},
}
# The broker layout is a leaf: everything asks it, it asks only the settings.
LEAVES = {"jobs.broker": {"config.settings"}}
PROJECT_MODULES = {*PACKAGES, "celeryconfig", "wsgi"}


def module_name(path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path) -> set[str]:
    """Project modules imported anywhere in the file (relative imports are not used here)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT_MODULES}


def project_graph() -> dict[str, set[str]]:
    files = [path for package in PACKAGES for path in (PROJECT_ROOT / package).rglob("*.py")]
    files += [PROJECT_ROOT / "celeryconfig.py", PROJECT_ROOT / "wsgi.py"]
    modules = {module_name(path): path for path in files}
    return {
        name: {imported for imported in imports_of(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }


def test_each_package_imports_only_what_it_may():
    wrong = []
    for module, imported in project_graph().items():
        package = module.split(".")[0]
        for target in imported:
            if package in ALLOWED and target.split(".")[0] not in ALLOWED[package] | {package}:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_broker_layout_imports_only_the_settings():
    graph = project_graph()
    for module, allowed in LEAVES.items():
        assert {target.rsplit(".", 1)[0] if target not in graph else target for target in graph[module]} <= allowed


def test_there_is_no_import_cycle():
    graph = project_graph()
    visiting, done, cycles = set(), set(), []

    def visit(module, path):
        if module in visiting:
            cycles.append(path[path.index(module) :] + [module])
            return
        if module in done:
            return
        visiting.add(module)
        for target in sorted(graph[module]):
            visit(target, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_the_web_process_loads_neither_the_worker_nor_the_model():
    code = (
        "import sys, wsgi; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tasks', 'models', 'celery_batches', 'tensorflow', 'keras', 'ai_edge_litert')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHON_DOTENV_DISABLED": "1", "CELERY_BROKER_URL": "memory://", "DATABASE_URL": "sqlite://", "PATH": ""},
    )
    assert result.stdout.strip() == "[]"

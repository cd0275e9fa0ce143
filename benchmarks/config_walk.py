"""Where the settings go: a static walk of one object (default: `config` of `training/recipe.py:fit`)
through stellartune's call graph, the count issue 30 asks for before and after a change (farm-studio's
walk is not available here).

    python benchmarks/config_walk.py                       # training/recipe.py:fit:config
    python benchmarks/config_walk.py pretraining/recipe.py:pretrain:config

From the start, every call that passes the object (the name itself, as a positional or keyword argument)
to a function stellartune defines is followed into that function, under the parameter's name there, in
call order (depth first; each function once). It prints:
- stays: the functions the object is handed to, the start included;
- modules: the modules they are in;
- climbs back up: steps of the walk into a module of a higher layer (pyproject's import-linter order)
  than the stay before: the walk went down, came back and went down again;
and, with --list, each stay in order with its layer; last, the functions of training/ and pretraining/ that
take more than 6 parameters (self and cls not counted).
Calls are resolved through each module's imports and its own functions; calls through objects
(`task.encode(...)`) are resolved by method name when one class of the package defines it.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "stellartune"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str, layers: list[list[str]]) -> int:
    """0 for the top layer; a module takes the layer of its longest matching package."""
    best, rank = -1, len(layers)
    for index, names in enumerate(layers):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, rank = len(name), index
    return rank


class Index:
    """Every function and method of the package, and what each module's names refer to."""

    def __init__(self):
        self.functions: dict[str, ast.FunctionDef] = {}  # "module:qualname" -> node
        self.imports: dict[str, dict[str, str]] = {}  # module -> local name -> "module:name" or "module"
        self.methods: dict[str, list[str]] = {}  # method name -> "module:Class.method" keys
        for path in sorted(PACKAGE.rglob("*.py")):
            module = module_name(path)
            tree = ast.parse(path.read_text())
            self.imports[module] = self.module_imports(module, path, tree)
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions[f"{module}:{node.name}"] = node
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            key = f"{module}:{node.name}.{item.name}"
                            self.functions[key] = item
                            self.methods.setdefault(item.name, []).append(key)

    @staticmethod
    def module_imports(module: str, path: Path, tree: ast.Module) -> dict[str, str]:
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        names = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
                for alias in node.names:
                    names[alias.asname or alias.name] = f"{source}:{alias.name}"
        return names

    def resolve(self, module: str, call: ast.Call) -> str | None:
        """The function a call reaches, followed through re-exports of package __init__ files."""
        func = call.func
        if isinstance(func, ast.Name):
            if f"{module}:{func.id}" in self.functions:
                return f"{module}:{func.id}"
            return self.follow(self.imports[module].get(func.id))
        if isinstance(func, ast.Attribute):
            owners = self.methods.get(func.attr, [])
            classes = {key.rsplit(".", 1)[0] for key in owners}
            return owners[0] if len(classes) == 1 else None
        return None

    def follow(self, target: str | None, depth: int = 0) -> str | None:
        if target is None or depth > 5:
            return None
        if target in self.functions:
            return target
        module, name = target.split(":")
        return self.follow(self.imports.get(module, {}).get(name), depth + 1)


def parameter_for(function: ast.FunctionDef, call: ast.Call, tracked: str, is_method: bool) -> str | None:
    """The callee's parameter that receives `tracked` in this call, if it is passed."""
    params = [a.arg for a in function.args.posonlyargs + function.args.args]
    if is_method and params and params[0] in ("self", "cls"):
        params = params[1:]
    for position, argument in enumerate(call.args):
        if isinstance(argument, ast.Name) and argument.id == tracked and position < len(params):
            return params[position]
    for keyword in call.keywords:
        if isinstance(keyword.value, ast.Name) and keyword.value.id == tracked and keyword.arg:
            return keyword.arg
    return None


def walk(index: Index, start: str, name: str) -> list[tuple[str, str]]:
    """(function, parameter) stays in depth-first call order, each function once."""
    stays, seen = [], set()

    def visit(key: str, tracked: str) -> None:
        if key in seen:
            return
        seen.add(key)
        stays.append((key, tracked))
        module = key.split(":")[0]
        calls = [n for n in ast.walk(index.functions[key]) if isinstance(n, ast.Call)]
        for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
            target = index.resolve(module, call)
            if target is None:
                continue
            parameter = parameter_for(index.functions[target], call, tracked, "." in target.split(":")[1])
            if parameter is not None:
                visit(target, parameter)

    visit(start, name)
    return stays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", nargs="?", default="training/recipe.py:fit:config",
                        help="FILE:FUNCTION:PARAMETER, FILE relative to src/stellartune")
    parser.add_argument("--list", action="store_true", help="print each stay")
    args = parser.parse_args()
    file, function, name = args.start.split(":")
    start = f"{module_name(PACKAGE / file)}:{function}"
    layers = [[n.strip() for n in entry.split("|")]
              for entry in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]]
    stays = walk(Index(), start, name)
    ranks = [layer_of(key.split(":")[0], layers) for key, _ in stays]
    climbs = sum(1 for before, after in zip(ranks, ranks[1:]) if after < before)
    if args.list:
        for (key, parameter), rank in zip(stays, ranks):
            print(f"  layer {rank:2d}  {key} ({parameter})")
    print(f"{args.start}: {len(stays)} stays in {len({k.split(':')[0] for k, _ in stays})} modules, "
          f"{climbs} climbs back up")
    crowded = many_parameters(["training", "pretraining"])
    print(f"functions over 6 parameters in training/ and pretraining/: {len(crowded)}"
          + "".join(f"\n  {name} ({count})" for name, count in crowded))


def many_parameters(packages: list[str], limit: int = 6) -> list[tuple[str, int]]:
    found = []
    for package in packages:
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    args = node.args
                    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                    count = len([n for n in names if n not in ("self", "cls")]) + bool(args.vararg) + bool(args.kwarg)
                    if count > limit:
                        found.append((f"{module_name(path)}:{node.name}", count))
    return found


if __name__ == "__main__":
    main()

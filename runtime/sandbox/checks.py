"""Static checks on a code submission: size, syntax, the functions it must define. Nothing runs."""

import ast

from runtime.errors import Problem

MAX_CODE_BYTES = 64 * 1024
# The name learner code runs under, in tracebacks and messages.
SUBMISSION_FILENAME = "submission.py"


def check_code(code: str) -> list[Problem]:
    """Every reason `code` cannot run; an empty list when it may.

    A problem's path is "code" for the whole submission or "code:LINE" for one line.
    """
    size = len(code.encode("utf-8", errors="surrogatepass"))
    if size > MAX_CODE_BYTES:
        return [
            Problem(
                "code",
                f"Your code is {size / 1024:.1f} KiB; the limit is {MAX_CODE_BYTES // 1024} KiB.",
            )
        ]
    try:
        tree = ast.parse(code, filename=SUBMISSION_FILENAME)
    except SyntaxError as error:
        return [_syntax_problem(error)]
    except ValueError as error:  # null bytes, before Python 3.12
        return [Problem("code", f"Your code cannot be read as Python: {error}.")]

    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    problems = []
    build = functions.get("build_model")
    if build is None:
        problems.append(
            Problem(
                "code",
                "Your code must define a function build_model(input_shape, num_classes) that "
                "returns a torch.nn.Module.",
            )
        )
    else:
        problems += _signature_problems(build, ("input_shape", "num_classes"))
    configure = functions.get("configure_optimizer")
    if configure is not None:
        problems += _signature_problems(configure, ("model",))
    return problems


def _syntax_problem(error: SyntaxError) -> Problem:
    line, column = error.lineno, error.offset
    message = error.msg
    if line is None:
        return Problem("code", f"Syntax error: {message}.")
    where = f"line {line}" + (f", column {column}" if column else "")
    return Problem(f"code:{line}", f"Syntax error on {where}: {message}.")


def _signature_problems(node: ast.FunctionDef | ast.AsyncFunctionDef, names) -> list[Problem]:
    call = f"{node.name}({', '.join(names)})"
    path = f"code:{node.lineno}"
    if isinstance(node, ast.AsyncFunctionDef):
        return [
            Problem(
                path,
                f"{node.name} on line {node.lineno} must be a plain function "
                f"(def, not async def): {call}.",
            )
        ]
    arguments = node.args
    positional = len(arguments.posonlyargs) + len(arguments.args)
    required_keywords = [
        a.arg for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is None
    ]
    if (positional < len(names) and arguments.vararg is None) or required_keywords:
        plural = "s" if len(names) > 1 else ""
        return [
            Problem(
                path,
                f"{node.name} on line {node.lineno} must accept "
                f"{len(names)} argument{plural}: {call}.",
            )
        ]
    required = positional - len(arguments.defaults)
    if required > len(names):
        return [
            Problem(
                path,
                f"{node.name} on line {node.lineno} takes {required} required "
                f"arguments; it is called as {call}.",
            )
        ]
    return []


# --- integrity flags ------------------------------------------------------------------------------

# A literal table this large (the text of its constants) is flagged: a model's code has layer
# sizes and a few hyperparameters, not kilobytes of data. A table of digits' published test
# inputs, hashed, to their labels is about 16 KB (issue 15).
LITERAL_TABLE_CHARS = 2048


def literal_tables(code: str, *, threshold: int = LITERAL_TABLE_CHARS) -> list[Problem]:
    """Flags, for the teacher (they refuse nothing): each literal in `code` (a str or bytes
    constant, or a list, tuple, set or dict made only of constants) whose constants' text is at
    least `threshold` characters, with its line; the outermost literal only, once."""
    try:
        tree = ast.parse(code, filename=SUBMISSION_FILENAME)
    except (SyntaxError, ValueError):
        return []  # check_code reports it
    flags: list[Problem] = []

    def visit(node: ast.AST) -> None:
        size = _literal_size(node)
        if size is not None and size >= threshold:
            kind = "text" if isinstance(node, ast.Constant) else f"{_entries(node)}-entry table"
            flags.append(
                Problem(
                    f"code:{node.lineno}",
                    f"Line {node.lineno} holds a literal {kind} of {size:,} characters: "
                    "data written into the code (answers looked up, not predicted?).",
                )
            )
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return flags


_CONTAINERS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


def _literal_size(node: ast.AST) -> int | None:
    """The text length of a literal's constants, or None when it is not all constants."""
    if isinstance(node, ast.Constant):
        value = node.value
        return len(value) if isinstance(value, str | bytes) else len(repr(value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return _literal_size(node.operand)  # -1
    if isinstance(node, ast.Dict):
        children = [*node.keys, *node.values]
        if any(key is None for key in node.keys):
            return None  # {**other}
    elif isinstance(node, _CONTAINERS):
        children = node.elts
    else:
        return None
    total = 0
    for child in children:
        size = _literal_size(child)
        if size is None:
            return None
        total += size + 1
    return total


def _entries(node: ast.AST) -> int:
    return len(node.keys) if isinstance(node, ast.Dict) else len(node.elts)

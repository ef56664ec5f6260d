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

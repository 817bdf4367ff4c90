"""Programs copied into sandbox directories and run by a bare interpreter (``python -I -S``).

Each file here is self-contained: it imports only the standard library and its siblings, because
the sandboxed interpreter cannot see rltf. ``wire`` is also imported by rltf itself, so the
encoder the grader trusts and the one the sandbox uses are the same source.
"""

# nbconvert configuration for scripts/jupyter.ts: tslab reports a cell's execution count only in its execute_reply,
# which nbclient does not read; take it from there so that executed notebooks show In [1], In [2], ...
def execution_count_from_reply(cell, cell_index, execute_reply):
    cell["execution_count"] = execute_reply["content"].get("execution_count")


c.ExecutePreprocessor.on_cell_executed = execution_count_from_reply  # noqa: F821 (c is nbconvert's config)

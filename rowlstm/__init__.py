"""The library the stages (stages/) and the tools (tools/) share: params, data formats,
the model, atomic writes, one-line errors, and the rest. Nothing here runs on import.
"""

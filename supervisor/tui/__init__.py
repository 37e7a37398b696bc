"""The Textual app: a pure view over ``supervisor.core.model.RunModel``.

Nothing in the core imports this package. The loop runs in its own thread; the app
pulls a delta from the model about ten times a second and applies it in one batch.
"""

"""What the stages hand each other: file names, the declared fields, the feature set, the model metadata.

Every module here is data and the code that reads or writes it, nothing else, so any layer can use them.
"""

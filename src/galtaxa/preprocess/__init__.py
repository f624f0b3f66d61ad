"""galtaxa.preprocess"""

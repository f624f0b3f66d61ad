"""galtaxa.reduce"""

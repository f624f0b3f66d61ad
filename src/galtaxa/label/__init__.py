"""galtaxa.label"""

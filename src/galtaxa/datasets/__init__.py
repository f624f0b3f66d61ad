"""galtaxa.datasets"""

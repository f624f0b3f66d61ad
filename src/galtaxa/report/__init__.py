"""galtaxa.report"""

"""convscope.train"""

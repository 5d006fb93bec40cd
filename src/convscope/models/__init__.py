"""convscope.models"""

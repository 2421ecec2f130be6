"""genreid.engine"""

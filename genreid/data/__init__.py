"""genreid.data"""

"""
SmartDiscover: tells mail, groupware, chat and VoIP clients how to connect.
"""

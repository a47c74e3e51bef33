"""Local emulators of the Google Admin and Microsoft Graph APIs, and the generated sandbox district."""

#! fails: Test-NetConnection tests this server only
Test-NetConnection -ComputerName www.example.com -Port 25

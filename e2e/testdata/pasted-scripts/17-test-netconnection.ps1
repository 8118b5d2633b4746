#! source: https://learn.microsoft.com/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365
#! expect: ComputerName     : smtp.office365.com
#! expect: TcpTestSucceeded : True
#! expect: Banner           : 220 
Test-NetConnection -ComputerName smtp.office365.com -Port {{submission}}

#! expect: domain\name: sean
#! expect: alias: sean
#! expect: display name: sean
#! expect: guid: sean
#! expect: proxy address: sean
#! expect: upn: sean
#! expect: shared by alias: Info Desk
$guid = (Get-Mailbox -Identity sean).ExchangeGuid
"domain\name: " + (Get-Mailbox -Identity "contoso\sean").Name
"alias: " + (Get-Mailbox -Identity sean).Name
"display name: " + (Get-Mailbox -Identity "Sean Smith").Name
"guid: " + (Get-Mailbox -Identity $guid).Name
"proxy address: " + (Get-Mailbox -Identity "smtp:sean.smith@contoso.com").Name
"upn: " + (Get-User -Identity sean@contoso.com).Name
"shared by alias: " + (Get-Mailbox -Identity info).Name
